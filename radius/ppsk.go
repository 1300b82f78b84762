package radius

// Personal keys found from the 4-way handshake (hostapd wpa_psk_radius=3).
//
// When hostapd has no PSK for a station it asks the RADIUS server during the
// 4-way handshake, sending the ANonce it chose and the station's EAPOL-Key
// message 2/4 (SNonce, MIC) as FreeRADIUS vendor attributes inside
// Extended-Vendor-Specific-5 (RFC 6929 long extended type 245, extended type
// 26, vendor 11344, vendor types 1 and 2). Whoever holds the right key made a
// MIC that only the PMK of that key verifies, so the server tries the PMK of
// every personal key for the SSID. PBKDF2 (4096 HMAC-SHA1 rounds per key) is
// far too slow to run per request for hundreds of keys, or at every start, so
// the Keyring derives a key's PMKs once, when it sets the key, and the store
// keeps them sealed beside it; the server loads them into a PMKTable at start
// and when the keys change, and a request then costs two HMAC-SHA1 per
// candidate.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"layeh.com/radius"

	"github.com/gatehouse-net/gatehouse/store"
)

// Where hostapd puts the handshake (src/radius/radius.h, hostapd 2.11).
const (
	typeLongExtended5       = 245 // Long-Extended-Type-5 (RFC 6929)
	extTypeVendorSpecific   = 26  // Extended-Vendor-Specific
	vendorFreeRADIUS        = 11344
	freeRADIUSANonce        = 1 // FreeRADIUS-802.1X-Anonce
	freeRADIUSEAPOLKeyMsg   = 2 // FreeRADIUS-802.1X-EAPoL-Key-Msg
	longExtFlagMore         = 0x80
	nonceLen                = 32
	pmkLen                  = 32
	eapolHeaderLen          = 4
	eapolKeyFixedLen        = 95 // descriptor type .. key data length
	maxEAPOLKeyFrame        = 1024
	eapolTypeKey            = 3
	keyDescriptorRSN        = 2
	keyInfoVersionMask      = 0x0007
	keyInfoVersionHMACSHA1  = 2 // HMAC-SHA1-128 MIC, AES key wrap: WPA2-PSK (AKM 2)
	keyInfoPairwise         = 1 << 3
	keyInfoInstall          = 1 << 6
	keyInfoAck              = 1 << 7
	keyInfoMIC              = 1 << 8
	keyInfoSecure           = 1 << 9
	keyInfoError            = 1 << 10
	keyInfoRequest          = 1 << 11
	keyInfoEncryptedKeyData = 1 << 12
	micOffset               = eapolHeaderLen + 77 // after type, info, len, replay, nonce, IV, RSC, reserved
	micLen                  = 16
)

// EAPOLKeyMsg2 is a parsed EAPOL-Key message 2 of the 4-way handshake.
type EAPOLKeyMsg2 struct {
	Frame   []byte // the whole 802.1X frame, as the MIC covers it
	KeyInfo uint16
	SNonce  [nonceLen]byte
	MIC     [micLen]byte
	KeyData []byte // the station's RSN element
}

// ParseEAPOLKeyMsg2 accepts only an RSN EAPOL-Key message 2/4 with the
// HMAC-SHA1-128 MIC (key descriptor version 2) and exact lengths: anything
// else is an error, never a guess.
func ParseEAPOLKeyMsg2(b []byte) (*EAPOLKeyMsg2, error) {
	if len(b) > maxEAPOLKeyFrame {
		return nil, fmt.Errorf("EAPOL-Key frame of %d octets is too long", len(b))
	}
	if len(b) < eapolHeaderLen+eapolKeyFixedLen {
		return nil, fmt.Errorf("EAPOL-Key frame of %d octets is too short", len(b))
	}
	if v := b[0]; v < 1 || v > 3 {
		return nil, fmt.Errorf("802.1X version %d", v)
	}
	if b[1] != eapolTypeKey {
		return nil, fmt.Errorf("802.1X packet type %d is not EAPOL-Key", b[1])
	}
	if n := int(binary.BigEndian.Uint16(b[2:4])); n != len(b)-eapolHeaderLen {
		return nil, fmt.Errorf("802.1X body length %d, frame carries %d", n, len(b)-eapolHeaderLen)
	}
	body := b[eapolHeaderLen:]
	if body[0] != keyDescriptorRSN {
		return nil, fmt.Errorf("key descriptor type %d is not RSN", body[0])
	}
	info := binary.BigEndian.Uint16(body[1:3])
	if v := info & keyInfoVersionMask; v != keyInfoVersionHMACSHA1 {
		return nil, fmt.Errorf("key descriptor version %d is not supported (only 2, HMAC-SHA1-128)", v)
	}
	if info&(keyInfoPairwise|keyInfoMIC) != keyInfoPairwise|keyInfoMIC ||
		info&(keyInfoInstall|keyInfoAck|keyInfoSecure|keyInfoError|keyInfoRequest|keyInfoEncryptedKeyData) != 0 {
		return nil, fmt.Errorf("key information %#04x is not message 2 of the 4-way handshake", info)
	}
	if n := int(binary.BigEndian.Uint16(body[93:95])); n != len(body)-eapolKeyFixedLen {
		return nil, fmt.Errorf("key data length %d, frame carries %d", n, len(body)-eapolKeyFixedLen)
	}
	m := &EAPOLKeyMsg2{Frame: bytes.Clone(b), KeyInfo: info}
	copy(m.SNonce[:], body[13:13+nonceLen])
	copy(m.MIC[:], b[micOffset:micOffset+micLen])
	m.KeyData = m.Frame[eapolHeaderLen+eapolKeyFixedLen:]
	return m, nil
}

// Handshake is what an Access-Request of hostapd's wpa_psk_radius=3 carries.
type Handshake struct {
	ANonce [nonceLen]byte
	Msg2   *EAPOLKeyMsg2
}

// errNoHandshake: the request is not a 4-way handshake query at all.
var errNoHandshake = errors.New("no 4-way handshake in the request")

// handshakeFrom finds the ANonce and message 2/4 in a request. It returns
// errNoHandshake when neither is there, and another error when they are there
// but malformed (a drop worth counting).
func handshakeFrom(p *radius.Packet) (*Handshake, error) {
	var anonce, eapol []byte
	var seenA, seenE bool
	for _, a := range p.Attributes {
		if a.Type != typeLongExtended5 {
			continue
		}
		v := a.Attribute
		// extended type, flags, vendor id (4), vendor type, value
		if len(v) < 7 || v[0] != extTypeVendorSpecific {
			continue
		}
		if binary.BigEndian.Uint32(v[2:6]) != vendorFreeRADIUS {
			continue
		}
		if v[1]&longExtFlagMore != 0 {
			// hostapd never fragments these (both fit one attribute);
			// reassembly is refused rather than half done.
			return nil, errors.New("fragmented FreeRADIUS attribute")
		}
		switch v[6] {
		case freeRADIUSANonce:
			if seenA {
				return nil, errors.New("two ANonce attributes")
			}
			seenA, anonce = true, v[7:]
		case freeRADIUSEAPOLKeyMsg:
			if seenE {
				return nil, errors.New("two EAPOL-Key attributes")
			}
			seenE, eapol = true, v[7:]
		}
	}
	if !seenA && !seenE {
		return nil, errNoHandshake
	}
	if !seenA || !seenE {
		return nil, errors.New("ANonce or EAPOL-Key message missing")
	}
	if len(anonce) != nonceLen {
		return nil, fmt.Errorf("ANonce of %d octets", len(anonce))
	}
	m, err := ParseEAPOLKeyMsg2(eapol)
	if err != nil {
		return nil, err
	}
	h := &Handshake{Msg2: m}
	copy(h.ANonce[:], anonce)
	return h, nil
}

// PMK is the WPA2 pairwise master key of a passphrase on an SSID
// (IEEE 802.11 J.4: PBKDF2-HMAC-SHA1, 4096 rounds, 256 bits).
func PMK(passphrase, ssid string) ([]byte, error) {
	if len(passphrase) < 8 || len(passphrase) > 63 {
		return nil, fmt.Errorf("a WPA passphrase has 8 to 63 characters, not %d", len(passphrase))
	}
	if len(ssid) == 0 || len(ssid) > 32 {
		return nil, fmt.Errorf("an SSID has 1 to 32 octets, not %d", len(ssid))
	}
	return pbkdf2.Key(sha1.New, passphrase, []byte(ssid), 4096, pmkLen)
}

// prf is the IEEE 802.11 PRF-n on HMAC-SHA1 (12.7.1.2): blocks of
// HMAC-SHA1(key, label || 0 || data || i) for i = 0, 1, ..., cut to n octets.
func prf(key []byte, label string, data []byte, n int) []byte {
	out := make([]byte, 0, n+sha1.Size)
	m := hmac.New(sha1.New, key)
	for i := byte(0); len(out) < n; i++ {
		m.Reset()
		m.Write([]byte(label))
		m.Write([]byte{0})
		m.Write(data)
		m.Write([]byte{i})
		out = m.Sum(out)
	}
	return out[:n]
}

// kck returns the key confirmation key: the first 128 bits of
// PRF-384(PMK, "Pairwise key expansion", min(AA,SPA) || max(AA,SPA) ||
// min(ANonce,SNonce) || max(ANonce,SNonce)) (IEEE 802.11 12.7.1.3). The PRF
// is computed for those 16 octets only: one HMAC-SHA1 block.
func kck(pmk []byte, aa, spa net.HardwareAddr, anonce, snonce []byte) []byte {
	data := make([]byte, 0, 2*6+2*nonceLen)
	if bytes.Compare(aa, spa) < 0 {
		data = append(append(data, aa...), spa...)
	} else {
		data = append(append(data, spa...), aa...)
	}
	if bytes.Compare(anonce, snonce) < 0 {
		data = append(append(data, anonce...), snonce...)
	} else {
		data = append(append(data, snonce...), anonce...)
	}
	return prf(pmk, "Pairwise key expansion", data, 16)
}

// micOK tells whether pmk made the MIC of message 2/4.
func micOK(pmk []byte, aa, spa net.HardwareAddr, h *Handshake) bool {
	k := kck(pmk, aa, spa, h.ANonce[:], h.Msg2.SNonce[:])
	m := hmac.New(sha1.New, k)
	f := h.Msg2.Frame
	m.Write(f[:micOffset])
	m.Write(make([]byte, micLen))
	m.Write(f[micOffset+micLen:])
	return hmac.Equal(m.Sum(nil)[:micLen], h.Msg2.MIC[:])
}

// pmkEntry is one key of one device on one SSID.
type pmkEntry struct {
	mac     net.HardwareAddr
	key     string
	pmk     []byte
	expires time.Time // an old key's end of validity; zero for a current key
}

// PMKTable keeps, per SSID, the PMK of every personal key a handshake may
// match: each device's current key and, during a rotation's overlap, its
// old ones. The server fills it from the PMKs stored when each key was set
// (LoadPMKs); Set, which derives them, is for callers without a store.
type PMKTable struct {
	mu     sync.RWMutex
	bySSID map[string][]pmkEntry
}

// NewPMKTable returns an empty table.
func NewPMKTable() *PMKTable {
	return &PMKTable{bySSID: map[string][]pmkEntry{}}
}

// Set makes key the device's only key on ssids (replacing its other keys,
// and removing it from SSIDs not listed), deriving the PMKs it does not
// already hold for that key.
func (t *PMKTable) Set(mac net.HardwareAddr, key string, ssids []string) error {
	id := mac.String()
	want := map[string]pmkEntry{}
	for _, ssid := range ssids {
		if _, dup := want[ssid]; dup {
			continue
		}
		if old, ok := t.find(ssid, id, key); ok {
			want[ssid] = old
			continue
		}
		pmk, err := PMK(key, ssid)
		if err != nil {
			return fmt.Errorf("radius: PMK of %s on %q: %w", mac, ssid, err)
		}
		want[ssid] = pmkEntry{mac: append(net.HardwareAddr(nil), mac...), key: key, pmk: pmk}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(id)
	for ssid, e := range want {
		t.bySSID[ssid] = append(t.bySSID[ssid], e)
	}
	return nil
}

func (t *PMKTable) find(ssid, id, key string) (pmkEntry, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, e := range t.bySSID[ssid] {
		if e.key == key && e.mac.String() == id {
			return e, true
		}
	}
	return pmkEntry{}, false
}

func (t *PMKTable) removeLocked(id string) {
	for ssid, es := range t.bySSID {
		kept := es[:0:0]
		for _, e := range es {
			if e.mac.String() != id {
				kept = append(kept, e)
			}
		}
		t.bySSID[ssid] = kept
	}
}

// Remove forgets the device's keys (revoked, key disabled, device gone).
func (t *PMKTable) Remove(mac net.HardwareAddr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(mac.String())
}

// holdsAny says whether the table holds a PMK of any of macs (lower-case
// colon text).
func (t *PMKTable) holdsAny(macs []string) bool {
	want := make(map[string]bool, len(macs))
	for _, m := range macs {
		want[m] = true
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, es := range t.bySSID {
		for _, e := range es {
			if want[e.mac.String()] {
				return true
			}
		}
	}
	return false
}

// replace swaps the whole table for bySSID.
func (t *PMKTable) replace(bySSID map[string][]pmkEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bySSID = bySSID
}

// Len is the number of (SSID, key) PMKs held.
func (t *PMKTable) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for _, es := range t.bySSID {
		n += len(es)
	}
	return n
}

// nextExpiry is when the first old key held stops being valid; zero when
// none is held.
func (t *PMKTable) nextExpiry() time.Time {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var first time.Time
	for _, es := range t.bySSID {
		for _, e := range es {
			if !e.expires.IsZero() && (first.IsZero() || e.expires.Before(first)) {
				first = e.expires
			}
		}
	}
	return first
}

// Match returns the device whose key made the handshake of station spa with
// access point aa on ssid, and that key; ok is false when no key valid at
// now did.
func (t *PMKTable) Match(ssid string, aa, spa net.HardwareAddr, h *Handshake, now time.Time) (mac net.HardwareAddr, key string, ok bool) {
	if len(aa) != 6 || len(spa) != 6 || h == nil || h.Msg2 == nil {
		return nil, "", false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, e := range t.bySSID[ssid] {
		if !e.expires.IsZero() && !e.expires.After(now) {
			continue
		}
		if micOK(e.pmk, aa, spa, h) {
			return e.mac, e.key, true
		}
	}
	return nil, "", false
}

// handshakeKey answers hostapd's wpa_psk_radius=3 query for a MAC nobody
// approved: when a personal key of an approved device made the handshake's
// MIC, the station is that device's owner on a new (often randomised) MAC, and
// gets what MAB would give that device — its segment and its key. done is
// false when the request carries no handshake or no key matches, so the
// segment's unknown_devices decides; a malformed handshake is dropped.
func (s *Server) handshakeKey(ctx context.Context, r *request, mac net.HardwareAddr, now time.Time) (o outcome, done bool) {
	if s.o.PMKs == nil {
		return outcome{}, false
	}
	h, err := handshakeFrom(r.pkt)
	if errors.Is(err, errNoHandshake) {
		return outcome{}, false
	}
	if err != nil {
		s.log.Info("radius: malformed 4-way handshake dropped", "client", r.client.Name, "user", r.user, "err", err)
		return outcome{reason: dropBadEAPOLKey}, true
	}
	if r.ap == nil {
		// The authenticator's address is half of the PTK: without
		// Called-Station-Id no key can be checked.
		return outcome{}, false
	}
	owner, key, ok := s.o.PMKs.Match(r.ssid, r.ap, mac, h, now)
	if !ok {
		return outcome{}, false
	}
	info, err := s.o.Devices.Lookup(ctx, owner)
	if err != nil {
		return s.reject(r, "device lookup failed", "key_of", owner.String(), "err", err), true
	}
	if info.Blocked || !info.Approved {
		// The table lags a revocation by at most one refresh: the
		// device's own state decides.
		return s.reject(r, "the key that matched belongs to a device no longer approved", "key_of", owner.String()), true
	}
	seg := r.asks
	if info.Segment != "" {
		seg = s.segs[info.Segment]
	}
	if seg == nil {
		return s.reject(r, "the key's device and the SSID name no segment", "key_of", owner.String()), true
	}
	s.log.Info("radius: personal key found from the 4-way handshake", "client", r.client.Name, "mac", mac.String(), "key_of", owner.String(), "ssid", r.ssid)
	return s.accept(r, seg, info.Until, []string{key}, now), true
}

// KeySource is where the server finds the personal keys a handshake may
// match and their PMKs (package store).
type KeySource interface {
	// The device change log names every device whose keys, PMKs,
	// approval, block or segment changed, by this process or another.
	DeviceChangeLog
	// HoldingKeys says whether any of macs holds a key or a stored PMK.
	HoldingKeys(ctx context.Context, macs []string) (bool, error)
	MatchableDeviceKeys(ctx context.Context, now time.Time) ([]store.SealedDeviceKey, error)
	DevicePMKs(ctx context.Context) ([]store.SealedPMK, error)
	PutDevicePMKs(ctx context.Context, pmks []store.SealedPMK) error
	PurgeExpiredDeviceKeys(ctx context.Context, actor string, now time.Time) (int64, error)
}

// pmkCheckEvery is how often the server reads the device change log to
// learn of a key set by another process (the command line): the staleness
// bound of the PMK table for changes made elsewhere. Usually one read of
// the log's newest rows, so a change reaches handshakes within seconds
// without reloading every key each time. A key set in this process (the
// pages, the API) is loaded at once.
const pmkCheckEvery = 3 * time.Second

// pmkChangesPerRead bounds one read of the change log; more changes since
// the last check make the table reload, as any gap does.
const pmkChangesPerRead = 4096

// PMKLoad is what one LoadPMKs did.
type PMKLoad struct {
	Keys    int // keys loaded (current and old)
	PMKs    int // (key, SSID) PMKs loaded
	Derived int // PMKs the store lacked, derived (PBKDF2) and stored
	Purged  int64
}

// LoadPMKs fills s.o.PMKs with the PMKs stored when each matchable key was
// set: old keys expired by now are purged first (with their PMKs), and a
// key lacking the PMK of one of its SSIDs (an SSID added to the
// configuration after the key was set) has it derived and stored, once. A
// device approved onto a segment has its key on that segment's SSIDs; one
// the SSID decides for, on every SSID. One unreadable key does not keep the
// others out: it is skipped and the first such error returned.
func (s *Server) LoadPMKs(ctx context.Context) (PMKLoad, error) {
	var ld PMKLoad
	if s.o.PMKs == nil || s.o.PMKKeys == nil || s.o.Keys == nil {
		return ld, nil
	}
	now := s.now()
	var err error
	if ld.Purged, err = s.o.PMKKeys.PurgeExpiredDeviceKeys(ctx, "radius", now); err != nil {
		return ld, fmt.Errorf("radius: loading PMKs: %w", err)
	}
	keys, err := s.o.PMKKeys.MatchableDeviceKeys(ctx, now)
	if err != nil {
		return ld, fmt.Errorf("radius: loading PMKs: %w", err)
	}
	stored, err := s.o.PMKKeys.DevicePMKs(ctx)
	if err != nil {
		return ld, fmt.Errorf("radius: loading PMKs: %w", err)
	}
	sealed := make(map[string][]byte, len(stored))
	for _, p := range stored {
		sealed[p.MAC.String()+"|"+p.KeyRef+"|"+p.SSID] = p.Sealed
	}
	all := make([]string, 0, len(s.ssid))
	for id := range s.ssid {
		all = append(all, id)
	}
	bySSID := map[string][]pmkEntry{}
	var missing []store.SealedPMK
	var firstErr error
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return ld, err
		}
		ssids := all
		if seg := s.segs[k.Segment]; seg != nil {
			ssids = seg.SSIDs
		}
		key, err := s.o.Keys.Open(k.MAC, k.Sealed)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		ref := k.Ref()
		mac := append(net.HardwareAddr(nil), k.MAC...)
		for _, ssid := range ssids {
			var pmk []byte
			if b, ok := sealed[mac.String()+"|"+ref+"|"+ssid]; ok {
				pmk, err = s.o.Keys.openPMK(mac, ref, ssid, b)
			} else {
				var sp store.SealedPMK
				if pmk, sp, err = s.o.Keys.derivePMK(mac, ref, key, ssid); err == nil {
					missing = append(missing, sp)
					ld.Derived++
				}
			}
			if err != nil {
				firstErr = cmp.Or(firstErr, err)
				continue
			}
			bySSID[ssid] = append(bySSID[ssid], pmkEntry{mac: mac, key: key, pmk: pmk, expires: k.Expires})
			ld.PMKs++
		}
		ld.Keys++
	}
	if err := s.o.PMKKeys.PutDevicePMKs(ctx, missing); err != nil {
		// They are in the table: only the next start derives them again.
		firstErr = cmp.Or(firstErr, err)
	}
	s.o.PMKs.replace(bySSID)
	return ld, firstErr
}

// RefreshPMKs is LoadPMKs for callers that need only its error.
func (s *Server) RefreshPMKs(ctx context.Context) error {
	_, err := s.LoadPMKs(ctx)
	return err
}

// refreshPMKs keeps the table current until ctx ends: it loads at start,
// again when the device change log names a device holding a key or PMKs
// (or has a gap), when this process's Keyring set a key, and when an old
// key held expires. It keeps its own position in the log.
func (s *Server) refreshPMKs(ctx context.Context) {
	t := time.NewTicker(pmkCheckEvery)
	defer t.Stop()
	loaded := false
	var pos int64 // change log position the table reflects
	for {
		if loaded {
			changed, next, err := s.keysChanged(ctx, pos)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					s.log.Warn("radius: reading the device change log", "err", err)
				}
			case changed:
				loaded = false
			default:
				pos = next
			}
		}
		exp := s.o.PMKs.nextExpiry()
		if !loaded || (!exp.IsZero() && !s.now().Before(exp)) {
			// The position is read before the keys (store's reading
			// rule). What LoadPMKs itself writes (derived PMKs, a purge)
			// is after it, so it causes one more load, which writes
			// nothing.
			p, err := s.o.PMKKeys.LatestChange(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("radius: reading the device change log", "err", err)
				}
			} else {
				ld, err := s.LoadPMKs(ctx)
				if err != nil && ctx.Err() == nil {
					s.log.Warn("radius: personal keys for 4-way handshakes", "err", err)
				}
				if ctx.Err() == nil {
					s.log.Info("radius: personal keys for 4-way handshakes loaded", "keys", ld.Keys, "pmks", ld.PMKs,
						"derived", ld.Derived, "old_keys_purged", ld.Purged)
				}
				loaded, pos = true, p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.o.Keys.Changed():
			loaded = false
		}
	}
}

// keysChanged reads the change log after pos: changed when it has a gap
// or names a device the table holds or that holds a key or PMK in the
// store (a change to any other device, such as a new DHCP sighting, cannot
// change the table); next is where the log was read to.
func (s *Server) keysChanged(ctx context.Context, pos int64) (changed bool, next int64, err error) {
	macs, next, gap, err := s.o.PMKKeys.ChangesSince(ctx, pos, pmkChangesPerRead)
	if err != nil || gap || len(macs) == 0 {
		return gap, next, err
	}
	if s.o.PMKs.holdsAny(macs) {
		return true, next, nil
	}
	held, err := s.o.PMKKeys.HoldingKeys(ctx, macs)
	return held, next, err
}
