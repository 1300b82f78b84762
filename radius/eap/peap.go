package eap

import (
	"context"
	"crypto/tls"
)

func (e *Engine) runPEAP(ctx context.Context, c *flight) methodResult {
	return methodResult{method: "PEAP", reason: "PEAP is not built yet"}
}

func (e *Engine) ttlsMSCHAPv2(ctx context.Context, c *flight, tc *tls.Conn, st tls.ConnectionState, avps []avp, res methodResult) methodResult {
	res.reason = "MSCHAPv2 inside TTLS is not built yet"
	return res
}
