// Package policy owns the school's forwarding policy and its enforcement in the
// kernel: the per-segment defaults, the who/what/where/when/action rule model, and
// the one nftables table ("inet gatehouse") that carries both, programmed over
// netlink. Membership (admitted visitors, approved, quarantined and revoked
// devices, blocked endpoints) lives in kernel sets so that a change is one element
// operation, and removing a member also drops its conntrack entries. A visitor's
// own limits (a voucher's rate and data quota, see AdmitWith) are elements of
// verdict maps leading to fixed rate-tier chains and to a per-device quota
// object, so the kernel enforces and counts them and expires them with the
// admission.
//
// The segment defaults are written down once, in Defaults: what each built-in
// segment may reach, what it does with a device nobody approved
// (UnknownDevices, which the DHCP server acts on at a lease and the kernel
// for every packet) and where the DNS guard blocks Private Relay. The
// configuration only names a segment's choice; the daemon hands this
// package's answer to the DHCP server and the DNS guard.
//
// It does not own where rules or members are stored (package store, reached
// through RuleStore), who a person is or which devices they own (package people),
// or the configuration file (package config: the caller fills a Network from it).
// The DNS guard lives in the subpackage dnsguard.
package policy
