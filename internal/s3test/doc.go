// Package s3test starts S3 servers on 127.0.0.1 for tests: Fake runs
// gofakes3 in-process, Versity runs the versitygw binary (a real S3 gateway
// over a posix folder) named by CDCLAKE_VERSITYGW, and All returns every
// server available so one test covers them all:
//
//	for _, srv := range s3test.All(t) {
//		t.Run(srv.Name, func(t *testing.T) {
//			srv.Env(t) // code under test uses the standard AWS chain
//			srv.CreateBucket(t, "lake")
//			...
//		})
//	}
//
// Servers stop at t.Cleanup.
package s3test
