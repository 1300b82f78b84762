package eap

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/radius/mschapv2"
)

// peapClient is the supplicant's side of PEAPv0 with EAP-MSCHAPv2 inside,
// written from the same drafts as the server, over crypto/tls's client:
// enough for a login through the engine without eapol_test.
func peapClient(c *eapClient, user, password string) error {
	// A session cache, so the client asks for a ticket (and the engine
	// binds it to the login), as wpa_supplicant does.
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(1)})
	if err := tc.Handshake(); err != nil {
		return err
	}
	st := tc.ConnectionState()
	if st.CurveID != tls.CurveP256 {
		// tls12Curves: over TLS 1.2, P-256 when the client offers it.
		return fmt.Errorf("TLS 1.2 key exchange over %v, want P-256", st.CurveID)
	}
	tk, err := st.ExportKeyingMaterial("client EAP encryption", nil, 128)
	if err != nil {
		return err
	}
	buf := make([]byte, 16<<10)
	read := func() ([]byte, error) {
		n, err := tc.Read(buf)
		return buf[:n], err
	}
	// The identity request comes with its header.
	in, err := read()
	if err != nil {
		return err
	}
	if len(in) != 5 || in[4] != TypeIdentity {
		return fmt.Errorf("inner identity request %x", in)
	}
	if _, err := tc.Write(append([]byte{TypeIdentity}, user...)); err != nil {
		return err
	}
	if in, err = read(); err != nil {
		return err
	}
	if len(in) < 22 || in[0] != TypeMSCHAPv2 || in[1] != mschapv2.OpChallenge {
		return fmt.Errorf("inner challenge %x", in)
	}
	var auth, peer [16]byte
	copy(auth[:], in[6:22])
	peer[0] = 7
	nt := mschapv2.GenerateNTResponse(auth, peer, user, mschapv2.NTPasswordHash(password))
	resp := []byte{TypeMSCHAPv2, mschapv2.OpResponse, in[2], 0, 0, 49}
	resp = append(resp, peer[:]...)
	resp = append(resp, make([]byte, 8)...)
	resp = append(resp, nt[:]...)
	resp = append(resp, 0)
	resp = append(resp, user...)
	binary.BigEndian.PutUint16(resp[3:5], uint16(len(resp)-1))
	if _, err := tc.Write(resp); err != nil {
		return err
	}
	if in, err = read(); err != nil {
		return err
	}
	if len(in) < 2 || in[0] != TypeMSCHAPv2 || (in[1] != mschapv2.OpSuccess && in[1] != mschapv2.OpFailure) {
		return fmt.Errorf("inner success or failure %x", in)
	}
	// Acknowledged with the bare opcode, a Failure without a retry.
	if _, err := tc.Write([]byte{TypeMSCHAPv2, in[1]}); err != nil {
		return err
	}
	if in, err = read(); err != nil {
		return err
	}
	p, err := Parse(in)
	if err != nil || p.Type != TypeExtensions {
		return fmt.Errorf("result %x: %v", in, err)
	}
	tlvs, err := parseTLVs(p.Data)
	if err != nil {
		return err
	}
	data := appendTLV(nil, tlvResult, true, binary.BigEndian.AppendUint16(nil, resultSuccess))
	for i, t := range tlvs {
		if t.typ != tlvCryptoBinding {
			continue
		}
		isk := mschapv2.ServerKeys(mschapv2.NTPasswordHash(password), nt).MSK()
		cb, err := newCryptoBinding(tk[:40], isk)
		if err != nil {
			return err
		}
		req := tlvBytes(p.Data, i)
		if !hmacEqual(cb.mac(req), req[40:60]) {
			return errors.New("the server's crypto binding is wrong")
		}
		copy(cb.nonce[:], req[8:40])
		data = append(data, cb.tlv(1)...)
	}
	if _, err := tc.Write(Packet{Code: CodeResponse, ID: p.ID, Type: TypeExtensions, Data: data}.Marshal()); err != nil {
		return err
	}
	if _, err := tc.Read(buf[:1]); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

func hmacEqual(a, b []byte) bool { return string(a) == string(b) }

// peapLogin runs one PEAP-MSCHAPv2 login through e, the client's TLS and
// inner method on their own goroutine, the EAP rounds on the caller's.
func peapLogin(ctx context.Context, e *Engine, client, user, password string, mtu int) (Reply, int, error) {
	c := &eapClient{flush: make(chan []byte), inbox: make(chan []byte), done: make(chan error, 1)}
	go func() {
		c.done <- peapClient(c, user, password)
		close(c.flush)
		for range c.inbox { // the engine's last flights, if the client gave up early
		}
	}()
	r, rounds, err := drive(ctx, e, c, client, mtu)
	close(c.inbox)
	for range c.flush {
	}
	if cerr := <-c.done; err == nil && r.Outcome == Accept {
		err = cerr
	}
	return r, rounds, err
}

// drive answers the engine's requests with what the client writes, until
// the login ends.
func drive(ctx context.Context, e *Engine, c *eapClient, client string, mtu int) (Reply, int, error) {
	r, err := e.Handle(ctx, Request{Client: client, Message: identity(1, "anonymous@school.example"), MTU: mtu})
	rounds := 1
	var flight []byte
	for err == nil && r.Outcome == Challenge {
		if rounds > 32 {
			return r, rounds, errors.New("no end after 32 rounds")
		}
		p, perr := Parse(r.Message)
		if perr != nil {
			return r, rounds, perr
		}
		var data []byte
		if p.Data[0]&flagStart == 0 {
			f, ferr := parseTLSFrame(p.Data)
			if ferr != nil {
				return r, rounds, ferr
			}
			flight = append(flight, f.data...)
			if f.flags&flagMore == 0 {
				c.inbox <- flight
				flight = nil
				data = <-c.flush
			}
		} else {
			data = <-c.flush
		}
		resp := Packet{Code: CodeResponse, ID: p.ID, Type: p.Type, Data: append([]byte{0}, data...)}.Marshal()
		r, err = e.Handle(ctx, Request{Client: client, State: r.State, Message: resp, MTU: mtu})
		rounds++
		// The caller may reuse the message's octets once Handle has
		// returned (the radius package's read loop does): a login that
		// read them later would fail here.
		for i := range resp {
			resp[i] = 0xee
		}
	}
	return r, rounds, err
}

func peapEngine(t testing.TB) *Engine {
	cert := serverCert(t)
	cert.Certificate = append(cert.Certificate, serverCert(t).Certificate[0])
	e, _ := newTestEngine(t, func(o *Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		o.Methods = []string{MethodPEAP}
		o.Now = time.Now
		o.MaxSessions = 1 << 16
		o.CredentialVersion = func(_ context.Context, user string) (string, error) {
			if user != "amy" {
				return "", errors.New("nobody of that name")
			}
			return "v1", nil
		}
		o.NTHash = func(_ context.Context, user string) ([16]byte, bool, error) {
			if user == "amy" {
				return mschapv2.NTPasswordHash("right"), true, nil
			}
			return [16]byte{}, false, nil
		}
	})
	return e
}

// A whole PEAP-MSCHAPv2 login through the engine, with the crypto binding
// the client checks and answers; a wrong password is refused.
func TestPEAPLoginInProcess(t *testing.T) {
	e := peapEngine(t)
	ctx := context.Background()
	r, _, err := peapLogin(ctx, e, "ap|1", "amy", "right", 1400)
	if err != nil || r.Outcome != Accept || r.Identity != "amy" || len(r.MSK) != 64 {
		t.Fatalf("login: %+v %v", r, err)
	}
	// The login's ticket is bound to amy (resume.go): its credential
	// version was taken with the NT hash.
	e.tmu.Lock()
	bound := len(e.bound)
	e.tmu.Unlock()
	if bound == 0 {
		t.Fatal("the login's ticket was not bound")
	}
	if r, _, _ := peapLogin(ctx, e, "ap|2", "amy", "wrong", 1400); r.Outcome != Reject {
		t.Fatalf("wrong password: %+v", r)
	}
	e.tmu.Lock()
	defer e.tmu.Unlock()
	if len(e.bound) != bound {
		t.Fatalf("a failed login bound its ticket: %d bindings, want %d", len(e.bound), bound)
	}
}

// BenchmarkPEAPLogin is one full PEAP-MSCHAPv2 login (TLS 1.2, no
// resumption) through the engine, the client's CPU included.
func BenchmarkPEAPLogin(b *testing.B) {
	e := peapEngine(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r, _, err := peapLogin(ctx, e, fmt.Sprint("ap|", i), "amy", "right", 1400)
		if err != nil || r.Outcome != Accept {
			b.Fatalf("%+v %v", r, err)
		}
	}
}
