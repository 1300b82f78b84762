package tlshello

import "encoding/binary"

// ServerFlight is what a passive observer can read from the server's first
// handshake flight: the negotiated version and, before TLS 1.3, the leaf
// certificate.
type ServerFlight struct {
	HelloSeen bool
	Version   uint16 // negotiated, from supported_versions when present
	Cipher    uint16
	ALPN      []byte
	// LeafCert is the DER of the first certificate, nil when the flight was
	// encrypted (TLS 1.3) or has not been seen in full.
	LeafCert []byte
}

// ParseServerFlight walks the handshake records at the start of a server's
// byte stream and fills f with what it finds before the first non-handshake
// record. It returns ErrShort when the stream ends inside a message that it
// still needs (ServerHello, or the Certificate before TLS 1.3).
func (f *ServerFlight) ParseServerFlight(data []byte, scratch []byte) ([]byte, error) {
	*f = ServerFlight{}
	// Join the bodies of the leading handshake records into one message
	// stream; records of other types end the cleartext part.
	scratch = scratch[:0]
	complete := false
	for len(data) >= 5 {
		if data[0] != 0x16 {
			complete = true
			break
		}
		if data[1] != 0x03 {
			return scratch, ErrNotTLS
		}
		n := int(binary.BigEndian.Uint16(data[3:5]))
		if len(data) < 5+n {
			scratch = append(scratch, data[5:]...)
			break
		}
		scratch = append(scratch, data[5:5+n]...)
		data = data[5+n:]
	}
	msgs := scratch
	for {
		if len(msgs) < 4 {
			break
		}
		typ := msgs[0]
		n := int(msgs[1])<<16 | int(msgs[2])<<8 | int(msgs[3])
		if len(msgs) < 4+n {
			break
		}
		body := msgs[4 : 4+n]
		msgs = msgs[4+n:]
		switch typ {
		case 2: // ServerHello
			if err := f.parseHello(body); err != nil {
				return scratch, err
			}
			if f.Version == 0x0304 {
				return scratch, nil // the rest is encrypted
			}
		case 11: // Certificate (TLS 1.2 layout)
			r := reader{b: body}
			list := r.sub24()
			cert := list.bytes24()
			if list.bad || r.bad {
				return scratch, ErrMalformed
			}
			f.LeafCert = cert
			return scratch, nil
		case 14: // ServerHelloDone: no certificate (anonymous or PSK)
			return scratch, nil
		}
	}
	if !f.HelloSeen || !complete {
		return scratch, ErrShort
	}
	return scratch, nil
}

func (f *ServerFlight) parseHello(body []byte) error {
	r := reader{b: body}
	f.Version = r.u16()
	r.skip(32)
	r.skip(int(r.u8()))
	f.Cipher = r.u16()
	r.skip(1)
	if r.bad {
		return ErrMalformed
	}
	f.HelloSeen = true
	if r.len() == 0 {
		return nil
	}
	exts := r.sub16()
	for exts.len() >= 4 {
		typ := exts.u16()
		e := exts.sub16()
		switch typ {
		case ExtSupportedVersions:
			if v := e.u16(); !e.bad {
				f.Version = v
			}
		case ExtALPN:
			l := e.sub16()
			if p := l.bytes8(); !l.bad {
				f.ALPN = p
			}
		}
	}
	if exts.bad {
		return ErrMalformed
	}
	return nil
}

func (r *reader) u24() int {
	if len(r.b) < 3 {
		r.bad = true
		r.b = nil
		return 0
	}
	v := int(r.b[0])<<16 | int(r.b[1])<<8 | int(r.b[2])
	r.b = r.b[3:]
	return v
}

func (r *reader) bytes24() []byte { return r.take(r.u24()) }

func (r *reader) sub24() reader {
	v := r.bytes24()
	return reader{b: v, bad: r.bad}
}
