package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestFoldFindingRollsUpAndQueuesOnce(t *testing.T) {
	st, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 10, 41, 7, 0, time.UTC)
	mac := net.HardwareAddr{2, 0, 0, 0, 0x20, 0x0a}
	var ids []int64
	for i := range 3 {
		f := []Finding{{At: t0.Add(time.Duration(i) * time.Minute), Source: "inspect", SrcMAC: mac, SrcIP: netip.MustParseAddr("10.20.0.10"), Class: "vpn", Detail: "openvpn"}}
		if err := st.InsertFindings(ctx, f); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f[0].ID)
	}
	fs, err := st.FindingsAfter(ctx, 0, 10)
	if err != nil || len(fs) != 3 || fs[0].Source != "inspect" || fs[0].ID != ids[0] {
		t.Fatalf("FindingsAfter: %+v %v", fs, err)
	}
	a := Alert{Key: "vpn|mac:" + mac.String(), Class: "vpn", Severity: SeverityHigh, SrcMAC: mac, PersonName: "Sam Pupil", AttributedBy: "lease"}
	var first int64
	for i, id := range ids {
		a.FirstSeen = fs[i].At
		got, created, err := st.FoldFinding(ctx, "test", id, a, []string{ChannelEmail, ChannelWebhook}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if created != (i == 0) {
			t.Errorf("finding %d: created %v", i, created)
		}
		if i == 0 {
			first = got
		} else if got != first {
			t.Errorf("finding %d folded into alert %d, want %d", i, got, first)
		}
	}
	got, err := st.AlertByID(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 3 || !got.FirstSeen.Equal(t0) || !got.LastSeen.Equal(t0.Add(2*time.Minute)) || got.State != AlertNew || got.PersonName != "Sam Pupil" {
		t.Errorf("alert %+v", got)
	}
	if p, _ := st.AlertProgress(ctx, "test"); p != fmt.Sprint(ids[2]) {
		t.Errorf("progress %q, want %d", p, ids[2])
	}
	ev, err := st.AlertEvidence(ctx, first, 0)
	if err != nil || len(ev) != 3 {
		t.Fatalf("evidence %d %v", len(ev), err)
	}
	due, err := st.DueOutbox(ctx, t0, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("due %+v %v: want one email and one webhook", due, err)
	}
	if err := st.OutboxFailed(ctx, due[0].ID, t0.Add(time.Minute), "connection refused"); err != nil {
		t.Fatal(err)
	}
	if err := st.OutboxSent(ctx, due[1].ID, t0); err != nil {
		t.Fatal(err)
	}
	if d, _ := st.DueOutbox(ctx, t0.Add(30*time.Second), 10); len(d) != 0 {
		t.Errorf("retry due before its time: %+v", d)
	}
	if d, _ := st.DueOutbox(ctx, t0.Add(time.Minute), 10); len(d) != 1 || d[0].Attempts != 1 || d[0].LastError != "connection refused" {
		t.Errorf("retry: %+v", d)
	}
	if dep, _ := st.OutboxDepth(ctx); dep[ChannelEmail] != 1 || dep[ChannelWebhook] != 0 {
		t.Errorf("depth %v", dep)
	}

	// Closed: the next repeat opens a new alert.
	if _, err := st.ChangeAlert(ctx, "web:dsl", first, AlertClosed, OutcomeTruePositive, "spoke to the pupil", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	a.FirstSeen = t0.Add(2 * time.Hour)
	if id, created, err := st.FoldFinding(ctx, "test", 0, a, nil, t0); err != nil || !created || id == first {
		t.Errorf("after close: id %d created %v err %v", id, created, err)
	}
	notes, err := st.AlertNotes(ctx, first)
	if err != nil || len(notes) != 1 || notes[0].StateFrom != AlertNew || notes[0].StateTo != AlertClosed || notes[0].Actor != "web:dsl" {
		t.Errorf("notes %+v %v", notes, err)
	}
	audit, err := st.AuditList(ctx, 10, 0)
	if err != nil || len(audit) == 0 || audit[0].Action != "alert.change" {
		t.Errorf("audit %+v %v", audit, err)
	}
	if _, err := st.ChangeAlert(ctx, "web:dsl", 9999, AlertTriaged, "", "", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("change of a missing alert: %v", err)
	}
	if n, err := st.PurgeAlerts(ctx, "alert-retention", t0.Add(24*time.Hour)); err != nil || n != 1 {
		t.Errorf("purge: %d %v", n, err)
	}
	if audit, _ := st.AuditList(ctx, 1, 0); len(audit) != 1 || audit[0].Action != "alerts.purge" || audit[0].Actor != "alert-retention" {
		t.Errorf("the purge was not audited: %+v", audit)
	}
	if _, err := st.AlertByID(ctx, first); !errors.Is(err, ErrNotFound) {
		t.Errorf("purged alert still there: %v", err)
	}
}

func TestSuppressionHasAnExpiry(t *testing.T) {
	st, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	mac := net.HardwareAddr{2, 0, 0, 0, 0x20, 0x0b}
	if _, err := st.AddSuppression(ctx, "web:dsl", Suppression{MAC: mac, Class: "ssh", Reason: "A-level computing project", Until: t0.Add(24 * time.Hour), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		class string
		at    time.Time
		want  bool
	}{{"ssh", t0.Add(time.Hour), true}, {"vpn", t0.Add(time.Hour), false}, {"ssh", t0.Add(25 * time.Hour), false}} {
		if got, err := st.Suppressed(ctx, mac, c.class, c.at); err != nil || got != c.want {
			t.Errorf("%s at %v: %v %v, want %v", c.class, c.at, got, err, c.want)
		}
	}
	if _, err := st.AddSuppression(ctx, "web:dsl", Suppression{MAC: mac, Class: "ssh", Until: t0}); err == nil {
		t.Error("suppression without a reason accepted")
	}
}
