package radius

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// DeviceInfo is what the owner of devices says about one MAC.
type DeviceInfo struct {
	Known    bool // recorded at all; an unknown device is neither approved nor blocked
	Approved bool
	Blocked  bool // blocked or revoked: always rejected
	// Segment is the segment the device was approved for; "" lets the
	// SSID's segment decide.
	Segment string
	Name    string
	Owner   string    // the person it belongs to, when known
	Until   time.Time // when its access ends; zero: no end
	// SealedKeyRead says SealedKey holds the device's sealed personal key
	// as the KeyStore keeps it (nil: none), read with the rest in one query;
	// otherwise the Keyring reads it itself.
	SealedKeyRead bool
	SealedKey     []byte
	// SealedOldKeys are the keys kept beside SealedKey after a rotation
	// with an overlap (read with it); the server drops the expired ones.
	SealedOldKeys []store.OldKey
}

// Devices looks devices up: StoreDevices over the store's devices table
// (approval itself is package people's).
type Devices interface {
	Lookup(ctx context.Context, mac net.HardwareAddr) (DeviceInfo, error)
}

// DeviceRecords is the part of the store StoreDevices reads.
type DeviceRecords interface {
	DeviceForRADIUS(ctx context.Context, mac net.HardwareAddr) (store.DeviceForRADIUS, error)
}

// StoreDevices is Devices over the store's devices table.
type StoreDevices struct {
	Store DeviceRecords
	// Ends, when set, gives a device with an owner its end of access
	// (DeviceInfo.Until): package people's, where a person's departure is
	// worked out. nil: devices have no end of their own.
	Ends DeviceEnds
}

// DeviceEnds says when a device's access ends because its owner's does.
// Its answers must change only with the device change log (the device
// cache holds them as it holds the rest of the record): package people's
// migration 0102 logs a person's devices whenever the person changes.
type DeviceEnds interface {
	// DeviceEnd is when mac's access ends; zero when it has no end (no
	// linked owner, or one with no departure).
	DeviceEnd(ctx context.Context, mac net.HardwareAddr) (time.Time, error)
}

// ManyDeviceEnds is a DeviceEnds that also answers for many devices at
// once (package people's, in one query): the device cache's preload asks
// it once rather than DeviceEnd for each owned device.
type ManyDeviceEnds interface {
	// DeviceEnds is DeviceEnd of each of macs; ends[i] is macs[i]'s.
	DeviceEnds(ctx context.Context, macs []net.HardwareAddr) (ends []time.Time, err error)
}

// Lookup reads mac's device record, its sealed personal key included.
func (d StoreDevices) Lookup(ctx context.Context, mac net.HardwareAddr) (DeviceInfo, error) {
	dev, err := d.Store.DeviceForRADIUS(ctx, mac)
	if err != nil {
		return DeviceInfo{}, err
	}
	return d.info(ctx, mac, dev)
}

// info is what Lookup answers for dev, mac's record.
func (d StoreDevices) info(ctx context.Context, mac net.HardwareAddr, dev store.DeviceForRADIUS) (DeviceInfo, error) {
	info := DeviceInfo{Known: dev.Known, Approved: dev.Approved, Blocked: dev.Blocked, Segment: dev.Segment,
		Name: dev.Name, Owner: dev.Owner, SealedKeyRead: true, SealedKey: dev.PSKSealed, SealedOldKeys: dev.OldKeys}
	if d.Ends != nil && dev.Known && dev.Owner != "" {
		var err error
		if info.Until, err = d.Ends.DeviceEnd(ctx, mac); err != nil {
			return DeviceInfo{}, err
		}
	}
	return info, nil
}

// ApprovedDeviceRecords is a DeviceRecords that also reads approved
// devices in bulk (package store): the device cache is preloaded from it.
type ApprovedDeviceRecords interface {
	ApprovedDevicesForRADIUS(ctx context.Context, limit int) ([]store.ApprovedRADIUSDevice, error)
}

// approved reads at most limit approved devices as Lookup answers each;
// ok is false when the store cannot read them in bulk.
func (d StoreDevices) approved(ctx context.Context, limit int) (macs []macKey, infos []DeviceInfo, ok bool, err error) {
	bulk, ok := d.Store.(ApprovedDeviceRecords)
	if !ok {
		return nil, nil, false, nil
	}
	devs, err := bulk.ApprovedDevicesForRADIUS(ctx, limit)
	if err != nil {
		return nil, nil, true, err
	}
	// With ManyDeviceEnds the owned devices' ends are read together below,
	// not by info one device at a time.
	many, _ := d.Ends.(ManyDeviceEnds)
	one := d
	var owned []int // indexes in infos of devices whose end many reads
	if many != nil {
		one.Ends = nil
	}
	macs, infos = make([]macKey, 0, len(devs)), make([]DeviceInfo, 0, len(devs))
	for _, dev := range devs {
		if len(dev.MAC) != len(macKey{}) {
			continue // not a MAC the cache holds
		}
		info, err := one.info(ctx, dev.MAC, dev.DeviceForRADIUS)
		if err != nil {
			return nil, nil, true, err
		}
		if many != nil && dev.Known && dev.Owner != "" {
			owned = append(owned, len(infos))
		}
		macs, infos = append(macs, macKey(dev.MAC)), append(infos, info)
	}
	if len(owned) > 0 {
		ownedMACs := make([]net.HardwareAddr, len(owned))
		for i, j := range owned {
			ownedMACs[i] = append(net.HardwareAddr(nil), macs[j][:]...)
		}
		ends, err := many.DeviceEnds(ctx, ownedMACs)
		if err != nil {
			return nil, nil, true, err
		}
		if len(ends) != len(owned) {
			return nil, nil, true, fmt.Errorf("radius: %d device ends for %d devices", len(ends), len(owned))
		}
		for i, j := range owned {
			infos[j].Until = ends[i]
		}
	}
	return macs, infos, true, nil
}

// Identity is what the owner of people says about a login name.
type Identity struct {
	Person       string // the person's id, recorded on their sessions
	PasswordHash string // argon2id (package password); "" = no Wi-Fi password set
	Active       bool   // false: left, revoked or suspended
	Segment      string // the segment their logins go on; "" = the SSID's
	Until        time.Time
	// NTSealed is the person's NT hash sealed by its owner (package
	// people), nil when none or when MSCHAPv2 is off. This package never
	// opens it itself: an NTHashOpener does, once per login, so what the
	// identity cache holds is only ever the sealed form.
	NTSealed []byte
}

// NTHashOpener is an Identities whose identities carry a sealed NT hash
// (Identity.NTSealed) and that can open one (package people's
// RADIUSIdentities). With one, the server answers the EAP engine's NT hash
// lookups (PEAP, TTLS-MSCHAPv2) from its identity cache (identities.go)
// instead of the caller's Options.NTHash, which reads the store per login.
type NTHashOpener interface {
	// OpenNTHash opens id's NT hash: found is false when id has none, is
	// not active, or MSCHAPv2 is not enabled, exactly as Options.NTHash
	// would answer for the same person.
	OpenNTHash(id Identity) (nt [16]byte, found bool, err error)
}

// ErrNoIdentity is what Identities.Lookup returns (wrapped) for an unknown
// name.
var ErrNoIdentity = errors.New("radius: no such identity")

// Identities looks people up by login name, for PAP. Package people
// implements it.
type Identities interface {
	Lookup(ctx context.Context, username string) (Identity, error)
}

// SessionStore keeps accounting sessions (package store).
type SessionStore interface {
	RecordAccounting(ctx context.Context, u store.AccountingUpdate) (store.RADIUSSession, error)
	CloseNASSessions(ctx context.Context, nas string, at time.Time, cause string) (int64, error)
	RADIUSSessions(ctx context.Context, f store.SessionFilter) ([]store.RADIUSSession, error)
	RADIUSSession(ctx context.Context, id int64) (store.RADIUSSession, error)
}

// Auditor records what a person caused (package store).
type Auditor interface {
	Audit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
}

// What this package publishes on the hub: events.SessionStarted and
// events.SessionEnded (Source events.SourceRADIUS) from accounting. It
// offers Options.Findings a finding.Finding (Source radius, Class
// unapproved-device, Detail not-approved) when a device nobody approved asks to join a segment that
// does not allow unknown devices.
