//go:build !gatehouse_faults

package main

import (
	"github.com/gatehouse-net/gatehouse/captive"
	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
)

// Fault injection is compiled in only with the gatehouse_faults build tag
// (see faults_inject.go), for the test that proves a panicking packet stops
// none of DHCP, DNS and the portal. In every other build these hand their
// argument back untouched.

func faultBinder(b dhcp.Binder) dhcp.Binder                   { return b }
func faultRecorder(r dnsguard.Recorder) dnsguard.Recorder     { return r }
func faultNeighbours(n captive.Neighbours) captive.Neighbours { return n }
