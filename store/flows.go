package store

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Flow is one row of the flow log: a summary of one inspected flow.
type Flow struct {
	Start, Last time.Time
	Ended       bool
	Segment     string
	MAC         net.HardwareAddr // nil when unknown
	Client      netip.Addr
	ClientPort  uint16
	Server      netip.Addr
	ServerPort  uint16
	Proto       string
	Name        string // the name the client resolved the server from
	Class       string // the finding class the flow raised, if any
	BytesOut    uint64
	BytesIn     uint64
	PacketsOut  uint64
	PacketsIn   uint64
}

// DefaultFlowRetention is how long the flow log is kept unless the school
// says otherwise: long enough for the DSL to look at last week's alerts.
const DefaultFlowRetention = 14 * 24 * time.Hour

// SaveFlows records a batch of flow reports in one transaction: a report of
// a flow already logged (same client, server, ports, protocol and start)
// updates it with the later counts. The rows are the clients' doing, not a
// person's, so they are not audited.
func (s *Store) SaveFlows(ctx context.Context, fs []Flow) error {
	if len(fs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		up, err := tx.PrepareContext(ctx, `INSERT INTO flows (at, last, ended, segment, mac, client_ip, client_port, server_ip, server_port,
				proto, name, class, bytes_out, bytes_in, packets_out, packets_in)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (client_ip, client_port, server_ip, server_port, proto, at) DO UPDATE SET
				last = MAX(last, excluded.last), ended = MAX(ended, excluded.ended),
				segment = CASE WHEN excluded.segment <> '' THEN excluded.segment ELSE segment END,
				mac = CASE WHEN excluded.mac <> '' THEN excluded.mac ELSE mac END,
				name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE name END,
				class = CASE WHEN excluded.class <> '' THEN excluded.class ELSE class END,
				bytes_out = MAX(bytes_out, excluded.bytes_out), bytes_in = MAX(bytes_in, excluded.bytes_in),
				packets_out = MAX(packets_out, excluded.packets_out), packets_in = MAX(packets_in, excluded.packets_in)`)
		if err != nil {
			return err
		}
		defer up.Close()
		for _, f := range fs {
			if f.Start.IsZero() || !f.Client.IsValid() || !f.Server.IsValid() {
				return fmt.Errorf("flow %v -> %v at %v: needs a start, a client and a server", f.Client, f.Server, f.Start)
			}
			last := f.Last
			if last.Before(f.Start) {
				last = f.Start
			}
			mac := ""
			if len(f.MAC) > 0 {
				mac = macText(f.MAC)
			}
			if _, err := up.ExecContext(ctx, formatTime(f.Start), formatTime(last), f.Ended, f.Segment, mac,
				f.Client.Unmap().String(), int(f.ClientPort), f.Server.Unmap().String(), int(f.ServerPort), f.Proto, f.Name, f.Class,
				clampInt64(f.BytesOut), clampInt64(f.BytesIn), clampInt64(f.PacketsOut), clampInt64(f.PacketsIn)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: save %d flows: %w", len(fs), err)
	}
	return nil
}

func clampInt64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}

// DeviceFlows returns the flows of a device (by MAC, or by address when
// the MAC is unknown) that were live between from and to, oldest first, at
// most limit (0 means 500).
func (s *Store) DeviceFlows(ctx context.Context, ip netip.Addr, mac net.HardwareAddr, from, to time.Time, limit int) ([]Flow, error) {
	if limit <= 0 {
		limit = 500
	}
	q := `SELECT at, last, ended, segment, mac, client_ip, client_port, server_ip, server_port, proto, name, class,
		bytes_out, bytes_in, packets_out, packets_in FROM flows WHERE at <= ? AND last >= ?`
	args := []any{formatTime(to), formatTime(from)}
	switch {
	case len(mac) > 0 && ip.IsValid():
		q += ` AND (mac = ? OR (mac = '' AND client_ip = ?))`
		args = append(args, macText(mac), ip.Unmap().String())
	case len(mac) > 0:
		q += ` AND mac = ?`
		args = append(args, macText(mac))
	case ip.IsValid():
		q += ` AND client_ip = ?`
		args = append(args, ip.Unmap().String())
	default:
		return nil, nil
	}
	q += ` ORDER BY at, id LIMIT ?`
	args = append(args, limit)
	return queryAll(ctx, s.db, "device flows", scanFlow, q, args...)
}

// scanFlow reads one row of DeviceFlows's columns.
func scanFlow(r scanner) (Flow, error) {
	var f Flow
	var at, last, mac, client, server string
	var cport, sport int
	var bo, bi, po, pi int64
	err := r.Scan(&at, &last, &f.Ended, &f.Segment, &mac, &client, &cport, &server, &sport, &f.Proto, &f.Name, &f.Class,
		&bo, &bi, &po, &pi)
	if err != nil {
		return f, err
	}
	if f.Start, err = parseTime(at); err != nil {
		return f, err
	}
	if f.Last, err = parseTime(last); err != nil {
		return f, err
	}
	if f.MAC, err = parseMACText(mac); err != nil {
		return f, err
	}
	if f.Client, err = parseAddrText(client); err != nil {
		return f, err
	}
	if f.Server, err = parseAddrText(server); err != nil {
		return f, err
	}
	f.ClientPort, f.ServerPort = uint16(cport), uint16(sport)
	f.BytesOut, f.BytesIn, f.PacketsOut, f.PacketsIn = uint64(bo), uint64(bi), uint64(po), uint64(pi)
	return f, nil
}

// PurgeFlows deletes flows that started before before and returns how many
// went, audited as "flows.purge" (see purgeOlder).
func (s *Store) PurgeFlows(ctx context.Context, actor string, before time.Time) (int64, error) {
	return s.purgeOlder(ctx, actor, "flows", "flows.purge", before)
}
