package store

import (
	"context"
	"testing"
	"time"
)

func TestReceptionLimitsDefaultThenSetAndAudited(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	l, err := s.ReceptionLimits(ctx)
	if err != nil || l != DefaultReceptionLimits {
		t.Fatalf("limits of a new database: %+v %v, want the defaults", l, err)
	}
	want := ReceptionLimits{MaxDevices: 2, MaxRateBps: 10_000_000, MaxQuotaBytes: 500_000_000, MaxDuration: 24 * time.Hour}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if err := s.SetReceptionLimits(ctx, "web:nm", want, at); err != nil {
		t.Fatal(err)
	}
	want.SetAt, want.SetBy = at, "web:nm"
	if l, err := s.ReceptionLimits(ctx); err != nil || l != want {
		t.Errorf("limits %+v %v, want %+v", l, err, want)
	}
	if e, err := s.AuditList(ctx, 1, 0); err != nil || len(e) != 1 || e[0].Action != "reception.limits" || e[0].Actor != "web:nm" {
		t.Errorf("audit %+v %v", e, err)
	}
	if err := s.SetReceptionLimits(ctx, "web:nm", ReceptionLimits{MaxDevices: 0, MaxDuration: time.Hour}, at); err == nil {
		t.Error("limits allowing no device at all were accepted")
	}
}
