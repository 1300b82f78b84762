package people

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/store"
)

// Self-service limits: a person's own Wi-Fi password page must not become
// a way to guess one. Failures are counted per person (any address) and
// per client address (any name), each over failureWindow.
const (
	maxFailuresPerPerson = 5
	maxFailuresPerIP     = 20
	failureWindow        = 15 * time.Minute
	// maxThrottled bounds each table: entries are keyed by names and
	// addresses that clients choose.
	maxThrottled = 4096
)

var (
	// ErrSelfServiceRefused is every refusal that must not say which part
	// was wrong: unknown name, wrong old password, no password yet, no
	// access.
	ErrSelfServiceRefused = errors.New("people: the username or current Wi-Fi password is wrong")
	// ErrTooManyAttempts says the person or the address must wait.
	ErrTooManyAttempts = errors.New("people: too many wrong attempts; wait 15 minutes and try again")
)

// failureCounter counts failures per key in a fixed window, bounded: at
// capacity the entries whose window is over go first, then the oldest.
type failureCounter struct {
	limit int
	mu    sync.Mutex
	m     map[string]failureEntry
}

type failureEntry struct {
	n     int
	first time.Time
}

func newFailureCounter(limit int) *failureCounter {
	return &failureCounter{limit: limit, m: map[string]failureEntry{}}
}

func (f *failureCounter) blocked(key string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[key]
	return ok && now.Sub(e.first) < failureWindow && e.n >= f.limit
}

func (f *failureCounter) fail(key string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[key]
	if !ok || now.Sub(e.first) >= failureWindow {
		if !ok && len(f.m) >= maxThrottled {
			f.evict(now)
		}
		e = failureEntry{first: now}
	}
	e.n++
	f.m[key] = e
}

func (f *failureCounter) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, e := range f.m {
		if now.Sub(e.first) >= failureWindow {
			delete(f.m, k)
			continue
		}
		if oldest == "" || e.first.Before(oldestAt) {
			oldest, oldestAt = k, e.first
		}
	}
	if len(f.m) >= maxThrottled {
		delete(f.m, oldest)
	}
}

func (f *failureCounter) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

// selfService holds the self-service throttles; made on first use.
type selfService struct {
	once     sync.Once
	byPerson *failureCounter
	byIP     *failureCounter
}

func (s *Service) throttles() *selfService {
	s.self.once.Do(func() {
		s.self.byPerson = newFailureCounter(maxFailuresPerPerson)
		s.self.byIP = newFailureCounter(maxFailuresPerIP)
	})
	return &s.self
}

// ipKey groups IPv6 clients by /64, which one host usually holds whole.
func ipKey(ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.Unmap().String()
}

// ChangeOwnWiFiPassword is the self-service change: the person proves who
// they are with their username and current Wi-Fi password and sets a new
// one (both forms, as SetWiFiPassword). Wrong attempts are limited per
// person and per client address; every refusal looks the same
// (ErrSelfServiceRefused) except a weak new password (ErrWeakPassword) and
// the limit (ErrTooManyAttempts). The change is audited with the actor
// "self:<username>"; passwords are never logged.
func (s *Service) ChangeOwnWiFiPassword(ctx context.Context, username, oldPW, newPW string, client netip.Addr) error {
	th := s.throttles()
	now := s.now()
	username = strings.TrimSpace(username)
	userKey := strings.ToLower(username)
	ipk := ipKey(client)
	if th.byIP.blocked(ipk, now) || th.byPerson.blocked(userKey, now) {
		s.log.Info("self-service Wi-Fi password: refused, too many attempts", "client", client.String())
		return ErrTooManyAttempts
	}
	if username == "" || len(username) > 128 || oldPW == "" || len(oldPW) > password.MaxLength {
		return ErrSelfServiceRefused
	}
	if err := CheckWiFiPassword(newPW); err != nil {
		return err
	}
	refuse := func(why string, known bool) error {
		th.byIP.fail(ipk, now)
		attrs := []any{"client", client.String(), "why", why}
		if known {
			// Only names that exist: a password typed into the name field
			// must not reach the log.
			th.byPerson.fail(userKey, now)
			attrs = append(attrs, "username", username)
		}
		s.log.Info("self-service Wi-Fi password: refused", attrs...)
		return ErrSelfServiceRefused
	}
	p, hash, err := s.st.PersonLogin(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same time as a real check, so a name's existence does
		// not show in the answer's delay.
		_, _ = password.Verify(dummyHash(), oldPW)
		return refuse("unknown username", false)
	}
	if err != nil {
		return fmt.Errorf("people: self-service password: %w", err)
	}
	if hash == "" {
		_, _ = password.Verify(dummyHash(), oldPW)
		return refuse("no Wi-Fi password set yet", true)
	}
	ok, err := password.Verify(hash, oldPW)
	if err != nil {
		return fmt.Errorf("people: self-service password: %w", err)
	}
	if !ok {
		return refuse("wrong current password", true)
	}
	if p.State != store.PersonActive && p.State != store.PersonLeaving {
		return refuse("no access ("+p.State+")", true)
	}
	if err := s.SetWiFiPassword(ctx, "self:"+p.Username, p.ID, newPW); err != nil {
		return err
	}
	s.log.Info("self-service Wi-Fi password changed", "username", p.Username, "client", client.String())
	return nil
}

var (
	dummyOnce sync.Once
	dummy     string
)

// dummyHash is an argon2id hash of nothing anyone types, for equal timing.
func dummyHash() string {
	dummyOnce.Do(func() { dummy, _ = password.Hash("gatehouse self-service timing pad") })
	return dummy
}

// wifiAlphabet has no characters that read alike (0/O, 1/l/I, 5/S...).
const wifiAlphabet = "346789abcdefghjkmnpqrtwxy"

// GenerateWiFiPassword makes a password the network manager can read out
// or print: four groups of four from an unambiguous alphabet (about 74
// bits), like "k7dm-3xqa-9wpe-fh4t".
func GenerateWiFiPassword() (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(wifiAlphabet)))
	for g := range 4 {
		if g > 0 {
			b.WriteByte('-')
		}
		for range 4 {
			n, err := rand.Int(rand.Reader, max)
			if err != nil {
				return "", fmt.Errorf("people: generating a password: %w", err)
			}
			b.WriteByte(wifiAlphabet[n.Int64()])
		}
	}
	return b.String(), nil
}
