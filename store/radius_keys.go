package store

import (
	"context"
	"fmt"
	"net"
)

// SealedDeviceKey is one approved, unblocked device's sealed personal key
// and the segment it is approved onto ("" when the SSID decides).
type SealedDeviceKey struct {
	MAC     net.HardwareAddr
	Segment string
	Sealed  []byte
}

// maxSealedDeviceKeys bounds one read: a school has a few thousand devices.
const maxSealedDeviceKeys = 100000

// SealedDeviceKeys lists the personal keys RADIUS may match a 4-way
// handshake against: approved, unblocked devices that have a key.
func (s *Store) SealedDeviceKeys(ctx context.Context) ([]SealedDeviceKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT d.mac, coalesce(r.segment, ''), r.psk_sealed
		FROM devices d JOIN radius_devices r ON r.mac = d.mac
		WHERE d.approved AND NOT d.blocked AND r.psk_sealed IS NOT NULL
		ORDER BY d.mac LIMIT ?`, maxSealedDeviceKeys)
	if err != nil {
		return nil, fmt.Errorf("store: sealed device keys: %w", err)
	}
	defer rows.Close()
	var out []SealedDeviceKey
	for rows.Next() {
		var mac string
		var k SealedDeviceKey
		if err := rows.Scan(&mac, &k.Segment, &k.Sealed); err != nil {
			return nil, fmt.Errorf("store: sealed device keys: %w", err)
		}
		if k.MAC, err = parseMACText(mac); err != nil {
			return nil, fmt.Errorf("store: sealed device keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: sealed device keys: %w", err)
	}
	return out, nil
}
