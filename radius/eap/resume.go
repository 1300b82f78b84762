package eap

// Session resumption for PEAP and TTLS (RFC 9427 2.1.2 and 2.4 over
// TLS 1.3; the same rule over TLS 1.2): a resumed tunnel may skip the
// inner login only when the server knows whom the resumed session
// authenticated. crypto/tls issues its tickets during the handshake,
// before the inner login has happened (over TLS 1.2 with our Finished,
// over TLS 1.3 right after it), so a ticket cannot carry the person
// itself. Each ticket carries a random reference instead (in
// SessionState.Extra, encrypted with the ticket key), and the engine
// binds the reference to the person once the inner login succeeded. A
// ticket with no binding (its inner login failed, or never finished, or
// it expired, or it comes from another method) is not resumed at all:
// the handshake runs in full and so does the inner login.
//
// A binding also names the password its inner login proved
// (Options.CredentialVersion, taken before the password was checked). A
// password changed or reset since (schools reset one exactly when it is
// compromised) makes the ticket unresumable: the handshake and the inner
// login run in full, and the old password fails there.
//
// Resumption proves the credentials again, nothing more: the caller still
// decides on every Accept whether the person may log in now (left,
// revoked, suspended, wrong segment), exactly as after a full login.
//
// crypto/tls serves tickets, not session-ID caches: a TLS 1.2 client
// resumes only if it offers tickets (wpa_supplicant: phase1
// "tls_disable_session_ticket=0"); TLS 1.3 resumption is always by ticket.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"time"
)

// ticketTag marks our reference among a SessionState's Extra values.
var ticketTag = []byte("gatehouse-eap-login\x00")

// tickets is one handshake's: what it issued, the binding it resumed,
// and the credential version of the person its inner login is for.
type tickets struct {
	issued  [][16]byte
	resumed *binding
	cred    credential
}

// credential is a person's credential version as it was when their
// password was about to be checked (or, resuming, as the binding had it
// and the store still has it).
type credential struct {
	user    string
	version string
	ok      bool // taken; without it nothing is bound
}

// binding is what a resumed tunnel stands for.
type binding struct {
	identity string
	method   byte
	expires  time.Time
	cred     string // the credential version the login proved
}

// bindTickets makes cfg's tickets carry a reference, and resume only a
// ticket whose reference is bound to a login of method by a person whose
// password is still the one that login proved.
func (e *Engine) bindTickets(ctx context.Context, cfg *tls.Config, tk *tickets, method byte) {
	if e.o.ResumeLifetime < 0 || e.o.CredentialVersion == nil {
		cfg.SessionTicketsDisabled = true
		return
	}
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		var ref [16]byte
		if _, err := rand.Read(ref[:]); err != nil {
			return nil, err
		}
		ss.Extra = append(ss.Extra, append(append([]byte(nil), ticketTag...), ref[:]...))
		tk.issued = append(tk.issued, ref)
		return cfg.EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(ticket []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := cfg.DecryptTicket(ticket, cs)
		if err != nil || ss == nil {
			return nil, err
		}
		for _, x := range ss.Extra {
			ref, ok := bytes.CutPrefix(x, ticketTag)
			if !ok || len(ref) != 16 {
				continue
			}
			b, ok := e.boundLogin([16]byte(ref), method)
			if !ok {
				continue
			}
			cur, err := e.o.CredentialVersion(ctx, b.identity)
			if err != nil || subtle.ConstantTimeCompare([]byte(cur), []byte(b.cred)) != 1 {
				// Changed, reset, cleared or not found: the inner login
				// decides, with the password the person has now. A
				// changed password stays changed: forget the binding.
				if err == nil {
					e.unbind([16]byte(ref))
				}
				e.log.Info("eap: resumption refused, the password changed since or its lookup failed; full login",
					"identity", b.identity, "err", err)
				return nil, nil
			}
			tk.resumed = &b
			tk.cred = credential{user: b.identity, version: cur, ok: true}
			return ss, nil
		}
		return nil, nil // not resumable: a full handshake
	}
}

func (e *Engine) unbind(ref [16]byte) {
	e.tmu.Lock()
	defer e.tmu.Unlock()
	delete(e.bound, ref)
}

// noteCredential takes user's credential version for tk, before the inner
// login checks user's password: a change made while the login is under
// way then leaves the binding stale rather than blessing the old password.
func (e *Engine) noteCredential(ctx context.Context, tk *tickets, user string) {
	if tk == nil {
		return
	}
	tk.cred = credential{}
	if len(tk.issued) == 0 || e.o.CredentialVersion == nil {
		return
	}
	v, err := e.o.CredentialVersion(ctx, user)
	if err != nil {
		e.log.Debug("eap: no credential version, the login will not be resumable", "identity", user, "err", err)
		return
	}
	tk.cred = credential{user: user, version: v, ok: true}
}

func (e *Engine) boundLogin(ref [16]byte, method byte) (binding, bool) {
	e.tmu.Lock()
	defer e.tmu.Unlock()
	b, ok := e.bound[ref]
	if !ok || b.method != method || e.now().After(b.expires) {
		return binding{}, false
	}
	return b, true
}

// bind records that the tickets tk issued stand for identity, who has
// just logged in by method inside the tunnel with the password whose
// version noteCredential took (for another name, or none: nothing bound).
func (e *Engine) bind(tk *tickets, identity string, method byte) {
	if tk == nil || len(tk.issued) == 0 || identity == "" || !tk.cred.ok || tk.cred.user != identity {
		return
	}
	now := e.now()
	e.tmu.Lock()
	defer e.tmu.Unlock()
	if len(e.bound)+len(tk.issued) > e.o.MaxResumable {
		for k, b := range e.bound {
			if now.After(b.expires) {
				delete(e.bound, k)
			}
		}
		// Still full: forget some at random (map order); those people
		// log in in full next time.
		for k := range e.bound {
			if len(e.bound)+len(tk.issued) <= e.o.MaxResumable {
				break
			}
			delete(e.bound, k)
		}
	}
	for _, ref := range tk.issued {
		e.bound[ref] = binding{identity: identity, method: method, expires: now.Add(e.o.ResumeLifetime), cred: tk.cred.version}
	}
}
