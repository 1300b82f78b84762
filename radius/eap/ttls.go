package eap

// EAP-TTLS (RFC 5281): Diameter AVPs inside the tunnel.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// AVP codes and vendors used inside TTLS.
const (
	avpUserName       = 1
	avpUserPassword   = 2
	avpEAPMessage     = 79
	vendorMicrosoft   = 311
	avpMSCHAPChal     = 11
	avpMSCHAP2Resp    = 25
	avpMSCHAP2Success = 26
	avpMSCHAPError    = 2

	avpFlagVendor    = 0x80
	avpFlagMandatory = 0x40
	maxAVPs          = 32
)

type avp struct {
	code   uint32
	vendor uint32
	flags  byte
	data   []byte
}

var errAVP = errors.New("eap: malformed TTLS AVP")

// parseAVPs parses the AVPs of one tunnelled message (RFC 5281 10.1).
func parseAVPs(b []byte) ([]avp, error) {
	var out []avp
	for len(b) > 0 {
		if len(b) < 8 || len(out) >= maxAVPs {
			return nil, errAVP
		}
		a := avp{code: binary.BigEndian.Uint32(b[0:4]), flags: b[4]}
		n := int(binary.BigEndian.Uint32(b[4:8]) & 0xffffff)
		hdr := 8
		if a.flags&avpFlagVendor != 0 {
			hdr = 12
			if len(b) < 12 {
				return nil, errAVP
			}
			a.vendor = binary.BigEndian.Uint32(b[8:12])
		}
		if n < hdr || n > len(b) {
			return nil, errAVP
		}
		a.data = b[hdr:n]
		out = append(out, a)
		pad := (4 - n%4) % 4
		if n+pad > len(b) {
			pad = len(b) - n // the last AVP's padding may be left off
		}
		b = b[n+pad:]
	}
	return out, nil
}

func appendAVP(b []byte, code, vendor uint32, data []byte) []byte {
	hdr := 8
	flags := byte(avpFlagMandatory)
	if vendor != 0 {
		hdr, flags = 12, flags|avpFlagVendor
	}
	n := hdr + len(data)
	var h [12]byte
	binary.BigEndian.PutUint32(h[0:4], code)
	binary.BigEndian.PutUint32(h[4:8], uint32(n))
	h[4] = flags
	binary.BigEndian.PutUint32(h[8:12], vendor)
	b = append(b, h[:hdr]...)
	b = append(b, data...)
	for n%4 != 0 {
		b = append(b, 0)
		n++
	}
	return b
}

func findAVP(avps []avp, code, vendor uint32) []byte {
	for _, a := range avps {
		if a.code == code && a.vendor == vendor {
			return a.data
		}
	}
	return nil
}

// runTTLS is EAP-TTLS version 0 with PAP or MSCHAPv2 inside.
func (e *Engine) runTTLS(ctx context.Context, c *flight) (res methodResult) {
	res = methodResult{method: "TTLS"}
	tc, _, tk, err := e.handshake(ctx, c, false, TypeTTLS)
	if err != nil {
		res.reason = err.Error()
		return res
	}
	st := tc.ConnectionState()
	res.version = tlsVersion(st.Version)
	if res.msk, res.emsk, err = exportKeys(st, TypeTTLS); err != nil {
		res.reason = err.Error()
		return res
	}
	if tk.resumed != nil {
		// RFC 5281 8, RFC 9427 2.4: the resumed tunnel stands for the
		// person its first login authenticated; nothing more to ask.
		res.identity, res.resumed, res.ok = tk.resumed.identity, true, true
		e.bind(tk, res.identity, TypeTTLS)
		return res
	}
	defer func() {
		if res.ok {
			e.bind(tk, res.identity, TypeTTLS)
		}
	}()
	tun := newTunnel(tc)
	defer tun.release()
	msg, err := tun.read()
	if err != nil {
		res.reason = "reading the tunnelled login: " + err.Error()
		return res
	}
	avps, err := parseAVPs(msg)
	if err != nil {
		res.reason = err.Error()
		return res
	}
	for _, a := range avps {
		known := a.vendor == 0 && (a.code == avpUserName || a.code == avpUserPassword || a.code == avpEAPMessage) ||
			a.vendor == vendorMicrosoft && (a.code == avpMSCHAPChal || a.code == avpMSCHAP2Resp)
		if !known && a.flags&avpFlagMandatory != 0 {
			res.reason = fmt.Sprintf("unsupported mandatory AVP %d (vendor %d)", a.code, a.vendor)
			return res
		}
	}
	user := string(findAVP(avps, avpUserName, 0))
	res.identity = user
	if user == "" {
		res.reason = "no User-Name in the tunnel"
		return res
	}
	// Before the password is checked, for the binding (resume.go).
	e.noteCredential(ctx, tk, user)
	switch {
	case findAVP(avps, avpUserPassword, 0) != nil:
		res.method = "TTLS-PAP"
		if e.o.CheckPassword == nil {
			res.reason = "PAP inside TTLS is not enabled"
			return res
		}
		pw := bytes.TrimRight(findAVP(avps, avpUserPassword, 0), "\x00")
		if err := e.o.CheckPassword(ctx, user, string(pw)); err != nil {
			res.reason = "PAP: " + err.Error()
			return res
		}
		res.ok = true
		return res
	case findAVP(avps, avpMSCHAP2Resp, vendorMicrosoft) != nil:
		res.method = "TTLS-MSCHAPv2"
		return e.ttlsMSCHAPv2(ctx, c, tc, st, avps, res)
	}
	res.reason = "the tunnel holds neither PAP nor MSCHAPv2"
	return res
}
