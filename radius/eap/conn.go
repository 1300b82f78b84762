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
	out      []byte // a last flight (an alert) to deliver before Success/Failure, framed as flight.take's
}

type flight struct {
	in      []byte // what the client sent and the TLS server has not read
	out     []byte // what the TLS server wrote since the last flight
	pending []byte // the client's next message, given by step
	ctx     context.Context
	cancel  context.CancelFunc

	yield func([]byte) bool // the method's side of the coroutine
	e     *Engine           // whose runners r comes from and goes back to
	r     *runner           // runs the method; nil once it has returned
	res   methodResult      // the method's end, once r says it returned
}

// runner is a coroutine that runs methods one after another, each to its
// end, and then waits for the next: the goroutine (and the stack the TLS
// handshake grew) of one login's method serves the next login's. A fresh
// coroutine per login began with a small stack and grew it by copying,
// several times, inside every handshake (runtime.newstack and the page
// faults of new stack memory were about 6% of the daemon's CPU under
// PEAP load). Idle runners wait in the engine's pool (getRunner,
// putRunner); the engine owns them and Close ends them.
type runner struct {
	next  func() ([]byte, bool)
	halt  func()
	run   func(yield func([]byte) bool) // the method the next resume starts
	ended bool                          // the method returned; waiting for another
}

func newRunner() *runner {
	r := &runner{}
	r.next, r.halt = iter.Pull(func(yield func([]byte) bool) {
		for {
			job := r.run
			r.run = nil
			if job == nil {
				return // resumed with nothing to run: never by the engine
			}
			r.ended = false
			job(yield)
			r.ended = true
			// The method's end: the flight sees ended; the next resume
			// brings another method (or halt ends the loop).
			if !yield(nil) {
				return
			}
		}
	})
	return r
}

// maxIdleRunners bounds the runners kept between logins: a login holds its
// runner only while its method runs, so a few cover the logins that start
// while others end; each keeps a stack of a few tens of KiB (which the
// garbage collector shrinks while it idles).
const maxIdleRunners = 16

func (e *Engine) getRunner() *runner {
	e.rmu.Lock()
	if n := len(e.idle); n > 0 {
		r := e.idle[n-1]
		e.idle = e.idle[:n-1]
		e.rmu.Unlock()
		return r
	}
	e.rmu.Unlock()
	return newRunner()
}

// putRunner keeps r, whose method has returned, for another login; or
// ends it, when the pool is full or the engine closed.
func (e *Engine) putRunner(r *runner) {
	e.rmu.Lock()
	if e.ctx.Err() == nil && len(e.idle) < maxIdleRunners {
		e.idle = append(e.idle, r)
		e.rmu.Unlock()
		return
	}
	e.rmu.Unlock()
	r.halt()
}

// closeRunners ends the idle runners (Close).
func (e *Engine) closeRunners() {
	e.rmu.Lock()
	idle := e.idle
	e.idle = nil
	e.rmu.Unlock()
	for _, r := range idle {
		r.halt()
	}
}

// startFlight makes fn the session's method, on a runner, with the
// client's first message to read; it does not run yet (step does).
func (e *Engine) startFlight(parent context.Context, first []byte, fn func(ctx context.Context, c *flight) methodResult) *flight {
	ctx, cancel := context.WithCancel(parent)
	c := &flight{in: first, ctx: ctx, cancel: cancel, e: e, r: e.getRunner()}
	c.r.run = func(yield func([]byte) bool) {
		c.yield = yield
		r := fn(ctx, c)
		if r.out == nil {
			r.out = c.take()
		}
		c.res = r
		c.yield = nil
	}
	return c
}

// stop ends the method: a method waiting for the client sees its read
// fail and returns, on the caller's goroutine, before stop returns. Only
// the session's owner may call it (the session's mutex held).
func (c *flight) stop() {
	c.cancel()
	r := c.r
	if r == nil {
		return
	}
	c.r = nil
	// With the context ended every read and write of the method fails,
	// and the methods return on the first failure: one resume unwinds it,
	// and the runner can serve another login. A method still going after
	// a few is ended with its runner.
	for i := 0; i < 4 && !r.ended; i++ {
		if _, ok := r.next(); !ok {
			return // the runner ended (it panicked, say); nothing to keep
		}
	}
	if !r.ended {
		r.halt()
		return
	}
	c.e.putRunner(r)
}

// take is the flight written so far, framed (frameRoom octets, then the
// TLS records), or nil when nothing was written.
func (c *flight) take() []byte {
	out := c.out
	c.out = nil
	return out
}

// exchange hands the flight written so far to the EAP side and waits for the
// client's next message.
func (c *flight) exchange() ([]byte, error) {
	// Whatever is left of the client's last message (a method that
	// exchanges without reading it all) is dropped, not kept across
	// the round: the message is the caller's (Request.Message), valid
	// only during the round.
	c.in = nil
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
	if c.r == nil {
		return nil, methodResult{}, false, net.ErrClosed // stopped
	}
	if !first {
		c.pending = in
	}
	out, more := c.r.next()
	if !more {
		// The runner ended without the method's end (halted): nothing
		// to keep, and this login's method is over.
		c.r = nil
		return nil, methodResult{}, false, net.ErrClosed
	}
	if c.r.ended {
		c.e.putRunner(c.r)
		c.r = nil
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

// Write collects the server's records for the next flight, after
// frameRoom octets left for the EAP header: a flight that fits one
// fragment, nearly every flight, is sent in its own buffer
// (fragmenter.startFramed) rather than copied into a new packet.
func (c *flight) Write(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, net.ErrClosed
	}
	if len(p) == 0 {
		return 0, nil // a flight with room but no data would not be empty
	}
	if c.out == nil {
		c.out = make([]byte, frameRoom, frameRoom+len(p))
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
