package people

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/radius/mschapv2"
	"github.com/gatehouse-net/gatehouse/store"
)

// Identity is what RADIUS needs to know of a login name (PAP, 802.1X).
type Identity struct {
	PersonID     int64
	PasswordHash string // argon2id; "" = no Wi-Fi password set
	Active       bool   // false: revoked or left
	Kind         string // pupil or staff
	Until        time.Time
	// NTSealed is the NT hash as NTSealer sealed it, read only while
	// MSCHAPv2 is enabled (Options.NTHashes); nil when none. Never opened
	// here: OpenNTHash opens it for one login, so a copy held in memory
	// (RADIUS's identity cache) holds only the sealed form.
	NTSealed []byte
}

// Identity looks a login name (a person's username) up; store.ErrNotFound
// when nobody has it.
func (s *Service) Identity(ctx context.Context, username string) (Identity, error) {
	var (
		p      store.Person
		hash   string
		sealed []byte
		err    error
	)
	if s.opts.NTHashes != nil {
		p, hash, sealed, err = s.st.PersonWiFiLogin(ctx, username)
	} else {
		p, hash, err = s.st.PersonLogin(ctx, username)
	}
	if err != nil {
		return Identity{}, err
	}
	id := Identity{PersonID: p.ID, PasswordHash: hash, Kind: p.Kind, NTSealed: sealed,
		Active: p.State == store.PersonActive || p.State == store.PersonLeaving}
	if len(sealed) == 0 {
		id.NTSealed = nil
	}
	if d, ok, err := s.departure(ctx, p); err == nil && ok {
		id.Until = d.At
	}
	return id, nil
}

// SetWiFiPassword gives a person a Wi-Fi password (at least 10
// characters), hashed with argon2id and, when MSCHAPv2 is enabled
// (Options.NTHashes), also kept as a sealed NT hash, both written in one
// audited transaction; "" removes both. A revoked person gets none.
func (s *Service) SetWiFiPassword(ctx context.Context, actor string, id int64, pw string) error {
	p, err := s.st.PersonByID(ctx, id)
	if err != nil {
		return err
	}
	hash := ""
	var sealed []byte
	if pw != "" {
		if p.State != store.PersonActive && p.State != store.PersonLeaving {
			return fmt.Errorf("people: %s has no access: %w", DisplayName(p), store.ErrConflict)
		}
		if err := CheckWiFiPassword(pw); err != nil {
			return err
		}
		if hash, err = password.Hash(pw); err != nil {
			return fmt.Errorf("people: hash password: %w", err)
		}
		if s.opts.NTHashes != nil {
			if sealed, err = s.opts.NTHashes.seal(id, mschapv2.NTPasswordHash(pw)); err != nil {
				return err
			}
		}
	}
	return s.st.SetPersonWiFiCredentials(ctx, actor, id, hash, sealed, s.now())
}

// ErrWeakPassword is wrapped by CheckWiFiPassword's error.
var ErrWeakPassword = errors.New("people: a Wi-Fi password is 10 to 256 characters")

// CheckWiFiPassword says whether pw may be a Wi-Fi password.
func CheckWiFiPassword(pw string) error {
	if utf8.RuneCountInString(pw) < 10 || len(pw) > 256 || !utf8.ValidString(pw) {
		return ErrWeakPassword
	}
	return nil
}

// PersonRef is how sessions name a person: their id as text.
func PersonRef(id int64) string { return strconv.FormatInt(id, 10) }

// RADIUSIdentities answers RADIUS's PAP lookups (radius.Identities) from
// the people a Service keeps: people owns who may log in, radius only asks.
type RADIUSIdentities struct{ Service *Service }

// Lookup is radius.Identities.Lookup: an unknown name is
// radius.ErrNoIdentity, so RADIUS can tell it from a broken store.
func (p RADIUSIdentities) Lookup(ctx context.Context, username string) (radius.Identity, error) {
	id, err := p.Service.Identity(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return radius.Identity{}, fmt.Errorf("%w: %s", radius.ErrNoIdentity, username)
	}
	if err != nil {
		return radius.Identity{}, err
	}
	return radius.Identity{Person: PersonRef(id.PersonID), PasswordHash: id.PasswordHash, Active: id.Active, Until: id.Until, NTSealed: id.NTSealed}, nil
}

// OpenNTHash is radius.NTHashOpener's: the NT hash of the identity Lookup
// returned, opened from the sealed copy it carries, with Service.NTHash's
// answer for the same person (found false for one who has left or is
// revoked, for one without a Wi-Fi password, and always when MSCHAPv2 is
// not enabled). RADIUS calls it with an identity from its cache, which the
// people change log keeps current (a password change, a revocation and
// ClearWiFiNTHashes all log the person), so a PEAP login costs an AES-GCM
// open instead of a SQL read.
func (p RADIUSIdentities) OpenNTHash(id radius.Identity) (nt [16]byte, found bool, err error) {
	sealer := p.Service.opts.NTHashes
	if sealer == nil || !id.Active || len(id.NTSealed) == 0 {
		return nt, false, nil
	}
	personID, err := strconv.ParseInt(id.Person, 10, 64)
	if err != nil {
		return nt, false, fmt.Errorf("people: identity names person %q: %w", id.Person, err)
	}
	if nt, err = sealer.open(personID, id.NTSealed); err != nil {
		return [16]byte{}, false, err
	}
	return nt, true, nil
}

// LatestPersonChange is radius.IdentityChangeLog's: the store's people
// change log (migration 0090), which triggers fill on every change to a
// person, their groups or the term calendar, so that the RADIUS server may
// hold identities in memory and still see a revocation, a leaver or a new
// password on the next request.
func (p RADIUSIdentities) LatestPersonChange(ctx context.Context) (int64, error) {
	return p.Service.st.LatestPersonChange(ctx)
}

// PersonChangesSince is radius.IdentityChangeLog's: the people changed
// since a position of the log, named as Lookup names them (PersonRef).
func (p RADIUSIdentities) PersonChangesSince(ctx context.Context, since int64, max int) ([]string, int64, bool, error) {
	ids, next, gap, err := p.Service.st.PersonChangesSince(ctx, since, max)
	if err != nil {
		return nil, 0, false, err
	}
	refs := make([]string, len(ids))
	for i, id := range ids {
		refs[i] = PersonRef(id)
	}
	return refs, next, gap, nil
}

// Commits is radius.IdentityChangeLog's: the store's count of this
// process's write transactions, so a change made here is seen by RADIUS's
// next request without waiting for its check interval.
func (p RADIUSIdentities) Commits() uint64 { return p.Service.st.Commits() }
