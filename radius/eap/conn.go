package eap

// The TLS server of a login runs as a goroutine that reads and writes a
// net.Conn; the EAP rounds are a conversation in lock-step. flight turns one
// into the other: when the TLS server wants to read and nothing is left of
// the client's last message, what it wrote since is one flight, handed to
// the EAP side to send; the next client message resumes it. Exactly one side
// runs at a time, so the session needs no other lock for the TLS state.

import (
	"context"
	"net"
	"time"
)

// methodResult is how a method's goroutine ended.
type methodResult struct {
	ok       bool
	reason   string // why it failed, for the log; never a password
	identity string // the inner identity (a person's login name)
	msk      []byte
	emsk     []byte
	method   string
	version  string // the TLS version
	resumed  bool   // a resumed tunnel: no inner login ran
	out      []byte // a last flight to deliver before Success/Failure (an alert)
}

type flight struct {
	in     []byte // what the client sent since the last flight
	out    []byte // what the TLS server wrote since
	resume chan []byte
	yield  chan []byte
	done   chan methodResult
	ctx    context.Context
	cancel context.CancelFunc
}

// startFlight runs fn as the session's method goroutine, with the
// client's first message to read. It owns the
// goroutine: stop ends it (the adapter's reads fail at once).
func startFlight(parent context.Context, first []byte, fn func(ctx context.Context, c *flight) methodResult) *flight {
	ctx, cancel := context.WithCancel(parent)
	c := &flight{in: first, resume: make(chan []byte), yield: make(chan []byte), done: make(chan methodResult, 1), ctx: ctx, cancel: cancel}
	go func() {
		r := fn(ctx, c)
		if r.out == nil {
			r.out = c.take()
		}
		c.done <- r
	}()
	return c
}

func (c *flight) stop() { c.cancel() }

func (c *flight) take() []byte {
	out := c.out
	c.out = nil
	return out
}

// exchange hands the flight written so far to the EAP side and waits for the
// client's next message.
func (c *flight) exchange() ([]byte, error) {
	select {
	case c.yield <- c.take():
	case <-c.ctx.Done():
		return nil, net.ErrClosed
	}
	select {
	case in := <-c.resume:
		return in, nil
	case <-c.ctx.Done():
		return nil, net.ErrClosed
	}
}

// step is the EAP side: give the client's message (nil for the first
// step, which only waits) and get the next flight, or the method's end.
func (c *flight) step(ctx context.Context, in []byte, first bool) (out []byte, r methodResult, done bool, err error) {
	if !first {
		select {
		case c.resume <- in:
		case r = <-c.done:
			return r.out, r, true, nil
		case <-ctx.Done():
			return nil, methodResult{}, false, ctx.Err()
		}
	}
	select {
	case out = <-c.yield:
		return out, methodResult{}, false, nil
	case r = <-c.done:
		return r.out, r, true, nil
	case <-ctx.Done():
		return nil, methodResult{}, false, ctx.Err()
	}
}

// Read gives the client's data; with none left it ends the flight.
func (c *flight) Read(p []byte) (int, error) {
	for len(c.in) == 0 {
		in, err := c.exchange()
		if err != nil {
			return 0, err
		}
		c.in = in
	}
	n := copy(p, c.in)
	c.in = c.in[n:]
	return n, nil
}

// Write collects the server's records for the next flight.
func (c *flight) Write(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, net.ErrClosed
	}
	c.out = append(c.out, p...)
	return len(p), nil
}

func (c *flight) Close() error                     { return nil }
func (c *flight) LocalAddr() net.Addr              { return eapAddr{} }
func (c *flight) RemoteAddr() net.Addr             { return eapAddr{} }
func (c *flight) SetDeadline(time.Time) error      { return nil }
func (c *flight) SetReadDeadline(time.Time) error  { return nil }
func (c *flight) SetWriteDeadline(time.Time) error { return nil }

type eapAddr struct{}

func (eapAddr) Network() string { return "eap" }
func (eapAddr) String() string  { return "eap" }
