// Package lake stores the lake's objects (Parquet data files, Iceberg
// metadata, KPI results) in a local folder or an S3 bucket behind one small
// interface.
//
// How the parts fit:
//
//   - Parse turns a --lake value (a folder path, file:///abs/path or
//     s3://bucket/prefix) into a Location, which also builds the full URL of
//     any object (Location.Join) for Iceberg metadata and the HTTP API.
//   - Open turns a Location into a Bucket: NewFileBucket for folders,
//     NewS3Bucket for S3. The S3 backend takes credentials, region and
//     endpoint only from the standard AWS chain (AWS_* environment
//     variables, shared config files, instance roles), never from flags, and
//     exposes its aws.Config so iceberg-go's S3 IO can share it.
//   - Bucket is the contract every backend keeps (documented per method);
//     BucketReader is its read-only half. Keys are relative slash-separated
//     paths checked by ValidateKey, so no key escapes the lake root or
//     prefix. Missing objects give ErrNotFound, bad keys ErrInvalidKey.
//   - WithPrefix is a decorator that confines a Bucket to a key prefix.
//   - Check is the start-up probe: it writes, lists, reads back and deletes
//     a small object under _cdclake/ and turns failures into one-line
//     messages that name the problem and the fix.
//   - The laketest package holds AcceptanceTest, which every backend runs in
//     one line; internal/s3test starts S3 servers (gofakes3, versitygw) for
//     it.
package lake
