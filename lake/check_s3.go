package lake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// explain diagnoses a failed Check step on S3. Messages carry the S3 error
// code, never credentials.
func (b *S3Bucket) explain(ctx context.Context, op probeOp, err error) error {
	bucket := fmt.Sprintf("s3 bucket %q", b.opts.Bucket)
	if p := contextProblem(bucket, op, err); p != nil {
		return p
	}
	code := apiCode(err)
	status := httpStatus(err)
	var msg string
	var ne net.Error
	switch {
	case code == "NoSuchBucket":
		msg = fmt.Sprintf("%s does not exist (create it or fix --lake)", bucket)
	case accessDenied(code) || status == http.StatusForbidden:
		msg = fmt.Sprintf("access to %s denied: %s (check AWS credentials/policy)", bucket, orStatus(code, status))
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || status == http.StatusMovedPermanently:
		msg = fmt.Sprintf("%s is not in region %q: %s (set AWS_REGION to the bucket's region)", bucket, b.opts.Region, orStatus(code, status))
	case status == 0 && !b.haveCredentials(ctx):
		msg = fmt.Sprintf("no AWS credentials for %s (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role)", bucket)
	case errors.As(err, &ne) || isDialError(err):
		msg = fmt.Sprintf("cannot reach the S3 endpoint %s for %s: %s (check --lake, AWS_ENDPOINT_URL_S3 and the network)", b.endpointName(), bucket, netReason(err))
	default:
		msg = fmt.Sprintf("%s: %s probe object: %s", bucket, op, oneLine(err))
	}
	return &problem{msg: msg, err: err}
}

// accessDenied reports whether an S3 error code means "these credentials
// may not do this". versitygw answers an unknown access key with a 404
// XAdminUserNotFound.
func accessDenied(code string) bool {
	switch code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"InvalidToken", "ExpiredToken", "TokenRefreshRequired",
		"AllAccessDisabled", "AccountProblem", "XAdminUserNotFound":
		return true
	}
	return false
}

// haveCredentials reports whether the AWS chain yields credentials. The SDK's
// "get identity" failure has no error type of its own, so a failed request
// without a response is checked this way.
func (b *S3Bucket) haveCredentials(ctx context.Context) bool {
	if b.cfg.Credentials == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := b.cfg.Credentials.Retrieve(ctx)
	return err == nil
}

func (b *S3Bucket) endpointName() string {
	if b.opts.Endpoint != "" {
		return b.opts.Endpoint
	}
	return "of AWS region " + b.opts.Region
}

// netReason returns the innermost network error text, such as "dial tcp
// 127.0.0.1:1: connect: connection refused", without the SDK's retry story.
func netReason(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oneLine(oe)
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return oneLine(de)
	}
	return oneLine(err)
}

func isDialError(err error) bool {
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &oe) || errors.As(err, &de)
}

// apiCode returns the S3 error code (NoSuchBucket, AccessDenied, ...) or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus returns the HTTP status of a failed S3 response, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func orStatus(code string, status int) string {
	if code != "" {
		return code
	}
	return fmt.Sprintf("HTTP %d", status)
}
