package main

import (
	"net/http"
	"os"

	"github.com/cdclake/cdclake/catalog/rest"
)

// The catalog service: /v1/ metadata, /iceberg/ (Iceberg REST catalog),
// /metrics, /healthz and /readyz.
func init() {
	serveMounts = append(serveMounts, func(mux *http.ServeMux, d serveDeps) error {
		api, err := rest.New(rest.Options{Catalog: d.Catalog, Bucket: d.Bucket, Location: d.Lake,
			Token: os.Getenv(tokenEnv), Logger: d.Logger, Registerer: metricsRegistry, Gatherer: metricsRegistry,
			SourceStatus: d.SourceStatus})
		if err != nil {
			return err
		}
		api.Register(mux)
		return nil
	})
}
