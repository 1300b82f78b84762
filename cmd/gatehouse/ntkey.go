package main

import (
	"context"
	"slices"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/sitekey"
)

// storeNTHashes says whether Wi-Fi passwords are also kept as sealed NT
// hashes, which MSCHAPv2 (PEAP, TTLS-MSCHAPv2) needs: when
// radius.store_nt_hash says so, or when EAP is on (a RADIUS authentication
// listener, see wirePKI) with a method that may carry MSCHAPv2 (peap or
// ttls; no radius.eap.methods means every method). Without this a school
// that enables PEAP would see every login fail until someone also found
// store_nt_hash.
func storeNTHashes(cfg *config.Config) bool {
	if cfg.RADIUS.StoreNTHash {
		return true
	}
	if cfg.RADIUS.Auth == "" {
		return false
	}
	m := cfg.RADIUS.EAP.Methods
	return len(m) == 0 || slices.Contains(m, "peap") || slices.Contains(m, "ttls")
}

// ntSealer is people's NT hash sealer (a subkey of the site key) when
// MSCHAPv2 is enabled, else nil: no NT hash is then stored.
func ntSealer(cfg *config.Config) (*people.NTSealer, error) {
	if !storeNTHashes(cfg) {
		return nil, nil
	}
	key, err := sitekey.Load(sitekey.PathFor(cfg.Database))
	if err != nil {
		return nil, err
	}
	return people.NewNTSealer(key)
}

// clearStaleNTHashes removes NT hashes left from when MSCHAPv2 was on, at
// the daemon's start (people.Service.ClearNTHashes does nothing while it
// is on).
func clearStaleNTHashes(ctx context.Context, svc *people.Service) error {
	_, err := svc.ClearNTHashes(ctx)
	return err
}
