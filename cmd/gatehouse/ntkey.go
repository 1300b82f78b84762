package main

import (
	"context"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/sitekey"
)

// storeNTHashes says whether Wi-Fi passwords are also kept as sealed NT
// hashes, which MSCHAPv2 (PEAP, TTLS-MSCHAPv2) needs. The EAP wiring adds
// its own condition here (an enabled method that uses MSCHAPv2).
func storeNTHashes(cfg *config.Config) bool { return cfg.RADIUS.StoreNTHash }

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
