package eap

// The TLS server of a login reads and writes a net.Conn; the EAP rounds
// are a conversation in lock-step. flight turns one into the other: when
// the TLS server wants to read and nothing is left of the client's last
// message, what it wrote since is one flight, handed to the EAP side to
// send; the next client message resumes it.
//
// The method runs as a coroutine (iter.Pull), not as a goroutine fed
// through channels: each round switches straight from the RADIUS worker
// to the method and back, on the same thread, without the scheduler. With
// channels every round was two goroutine wake-ups, each of which woke an
// idle thread (a futex and a context switch) to look for work, in a
// PEAP login of eight rounds the largest cost after the TLS crypto.
// Exactly one side runs at a time, so the session needs no other lock for
// the TLS state; the session's mutex serialises the EAP side (next and
// stop of iter.Pull must never run concurrently).

import (
	"context"
	"iter"
	"net"
	"time"
)

// methodResult is how a method ended.
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
	in      []byte // what the client sent and the TLS server has not read
	out     []byte // what the TLS server wrote since the last flight
	pending []byte // the client's next message, given by step
	ctx     context.Context
	cancel  context.CancelFunc

	yield func([]byte) bool // the method's side of the coroutine
	next  func() ([]byte, bool)
	halt  func()
	res   methodResult // the method's end, once next says it returned
}

// startFlight makes fn the session's method coroutine, with the client's
// first message to read; it does not run yet (step does).
func startFlight(parent context.Context, first []byte, fn func(ctx context.Context, c *flight) methodResult) *flight {
	ctx, cancel := context.WithCancel(parent)
	c := &flight{in: first, ctx: ctx, cancel: cancel}
	c.next, c.halt = iter.Pull(func(yield func([]byte) bool) {
		c.yield = yield
		r := fn(ctx, c)
		if r.out == nil {
			r.out = c.take()
		}
		c.res = r
	})
	return c
}

// stop ends the method: a method waiting for the client sees its read
// fail and returns, on the caller's goroutine, before stop returns. Only
// the session's owner may call it (the session's mutex held).
func (c *flight) stop() {
	c.cancel()
	c.halt()
}

func (c *flight) take() []byte {
	out := c.out
	c.out = nil
	return out
}

// exchange hands the flight written so far to the EAP side and waits for the
// client's next message.
func (c *flight) exchange() ([]byte, error) {
	if c.ctx.Err() != nil || !c.yield(c.take()) {
		return nil, net.ErrClosed
	}
	in := c.pending
	c.pending = nil
	if c.ctx.Err() != nil {
		return nil, net.ErrClosed
	}
	return in, nil
}

// step is the EAP side: give the client's message (ignored on the first
// step, whose message startFlight took) and run the method until it has
// the next flight, or has ended. A request whose context already ended
// runs nothing.
func (c *flight) step(ctx context.Context, in []byte, first bool) (out []byte, r methodResult, done bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, methodResult{}, false, err
	}
	if !first {
		c.pending = in
	}
	out, more := c.next()
	if !more {
		return c.res.out, c.res, true, nil
	}
	return out, methodResult{}, false, nil
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
