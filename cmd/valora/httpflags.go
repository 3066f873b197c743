package main

import (
	"flag"

	"valora/processor/httpapi"
)

// httpFlags are the flags of the HTTP surface beyond its address
// (--http-addr): TLS, who may read customers. The server's timeouts and
// limits are httpapi.Config's defaults.
type httpFlags struct {
	certFile  string
	keyFile   string
	lookup    string
	tokenFile string
}

func (h *httpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&h.certFile, "http-tls-cert", "", "PEM `file` of the HTTP server's certificate: serve HTTPS (with --http-tls-key)")
	fs.StringVar(&h.keyFile, "http-tls-key", "", "PEM `file` of the HTTP server certificate's private key")
	fs.StringVar(&h.lookup, "http-lookup", "on", "customer lookup GET /v1/customers/{id}: on or off (off answers 403)")
	fs.StringVar(&h.tokenFile, "http-token-file", "", "`file` holding a bearer token that the customer lookup requires (Authorization: Bearer <token>); /metrics, /healthz and /readyz stay open")
}

// config returns the HTTP config; its Validate checks the files.
func (h *httpFlags) config() (httpapi.Config, error) {
	c := httpapi.Config{CertFile: h.certFile, KeyFile: h.keyFile, TokenFile: h.tokenFile}
	switch h.lookup {
	case "on":
	case "off":
		c.DisableLookup = true
	default:
		return c, usagef("--http-lookup: %q is not on or off", h.lookup)
	}
	return c, nil
}
