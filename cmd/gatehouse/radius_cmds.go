package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/radius/radiusweb"
	"github.com/gatehouse-net/gatehouse/store"
)

const deviceUsage = `gatehouse device: approve a device for Wi-Fi, or give it a personal key.

  gatehouse device approve --config FILE --mac MAC --segment NAME [--owner ID] [--name TEXT]
      Approves the device (MAB: RADIUS accepts it onto NAME's VLAN whatever
      SSID it joins; --segment "" lets the SSID decide) and lifts any block.
      --owner links it to a person, named by MIS id (UPN, admission number or
      staff code), username or email; a person not found is an error and
      approves nothing. Audited. A running daemon's kernel rules take the approval at its next
      restart; the devices page applies it at once.

  gatehouse device key --config FILE --mac MAC [--ssid NAME] [--keep-old DURATION]
      Makes a new personal Wi-Fi key for an approved device, replacing its old
      one, and prints it (the only time it is shown; the database keeps it
      sealed with the site key). With --ssid, also prints the QR payload
      (WIFI:T:WPA;S:...;P:...;;). With --keep-old (e.g. 72h or 7d), the old
      key stays valid that much longer: RADIUS sends both until then, one
      Tunnel-Password each. Audited without the key.

Example:
  gatehouse device approve --config /etc/gatehouse/gatehouse.yaml --mac 3c:22:fb:01:02:03 --segment staff --owner ABC --name "Head's laptop"
  gatehouse device key --config /etc/gatehouse/gatehouse.yaml --mac 3c:22:fb:01:02:03 --ssid Staff
`

func cmdDevice(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand (approve or key)")
	}
	if args[0] == "-h" || args[0] == "--help" {
		return flag.ErrHelp
	}
	sub := args[0]
	if sub != "approve" && sub != "key" {
		return usagef("unknown subcommand %q (want approve or key)", sub)
	}
	fs := flag.NewFlagSet("device "+sub, flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	macText := fs.String("mac", "", "the device's MAC")
	segment := fs.String("segment", "", "segment it is approved for")
	name := fs.String("name", "", "a name for the device")
	owner := fs.String("owner", "", "the owner's MIS id (UPN, admission number, staff code) or username")
	ssid := fs.String("ssid", "", "SSID for the QR payload")
	keepOld := fs.String("keep-old", "", "how long the replaced key stays valid (72h, 7d); default: not at all")
	if err := parseFlags(fs, args[1:], false); err != nil {
		return err
	}
	if err := requireConfig(*path); err != nil {
		return err
	}
	mac, ok := radius.ParseMAC(*macText)
	if !ok {
		return usagef("--mac %q is not a MAC address", *macText)
	}
	cfg, st, err := openDatabase(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "approve":
		segSet := false
		fs.Visit(func(f *flag.Flag) { segSet = segSet || f.Name == "segment" })
		if !segSet {
			return usagef("missing --segment NAME (or --segment \"\" to let the SSID decide)")
		}
		if *segment != "" && !slices.ContainsFunc(cfg.Segments, func(s config.Segment) bool { return s.Name == *segment }) {
			return usagef("--segment %q is not a segment of %s", *segment, *path)
		}
		// People owns what approving means (owner checks, kernel); with
		// no enforcer here the daemon applies it at its next start.
		w, err := newPeople(slog.New(slog.DiscardHandler), cfg, policy.Network{}, st, nil, nil)
		if err != nil {
			return err
		}
		if _, err := w.svc.ApproveDevice(ctx, cliActor(), mac, *segment, *name, strings.TrimSpace(*owner)); err != nil {
			if errors.Is(err, people.ErrUnknownPerson) {
				return fmt.Errorf("--owner %q names nobody: give a UPN, admission number, staff code or username from gatehouse people list; nothing was approved", *owner)
			}
			return err
		}
		fmt.Fprintf(env.stdout, "approved %s for %s", mac, orSSID(*segment))
		if *owner != "" {
			fmt.Fprintf(env.stdout, ", owned by %s", strings.TrimSpace(*owner))
		}
		fmt.Fprintln(env.stdout)
		return nil
	default:
		known, approved, blocked, err := st.DeviceStatus(ctx, mac)
		if err != nil {
			return err
		}
		if !known || !approved || blocked {
			return fmt.Errorf("%s is not an approved device; approve it first (gatehouse device approve)", mac)
		}
		keep, err := radius.ParseOverlap(*keepOld)
		if err != nil {
			return usagef("--keep-old: %v", err)
		}
		keys, err := openKeyring(cfg, st)
		if err != nil {
			return err
		}
		key, err := keys.RotateKeepingOld(ctx, cliActor(), mac, keep)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, key)
		if *ssid != "" {
			fmt.Fprintln(env.stdout, radius.WiFiQR(*ssid, key))
		}
		return nil
	}
}

func orSSID(seg string) string {
	if seg == "" {
		return "the segment of whichever SSID it joins"
	}
	return "segment " + seg
}

const sessionsUsage = `gatehouse sessions: list Wi-Fi (RADIUS accounting) sessions.

Flags:
  --config FILE   the configuration file (required; names the database)
  --all           include ended sessions (default: live ones only)
  --json          one JSON document instead of a table

Example:
  gatehouse sessions --config /etc/gatehouse/gatehouse.yaml --json
`

func cmdSessions(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("sessions", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	all := fs.Bool("all", false, "include ended sessions")
	asJSON := fs.Bool("json", false, "JSON output")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if err := requireConfig(*path); err != nil {
		return err
	}
	_, st, err := openDatabase(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.RADIUSSessions(ctx, store.SessionFilter{OpenOnly: !*all})
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]any, 0, len(list))
		for _, s := range list {
			out = append(out, radiusweb.APISession(s))
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"sessions": out})
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHO\tMAC\tIP\tAP/ROOM\tSSID\tNAS\tSINCE\tENDED\tIN\tOUT")
	for _, s := range list {
		who := s.Person
		if who == "" {
			who = s.Username
		}
		where := s.Room
		if where == "" {
			where = s.AP
		}
		ip, mac, ended := "", "", ""
		if s.IP.IsValid() {
			ip = s.IP.String()
		}
		if s.MAC != nil {
			mac = s.MAC.String()
		}
		if !s.Stop.IsZero() {
			ended = s.Stop.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.ID, who, mac, ip, where, s.SSID, s.NAS,
			s.Start.Local().Format("2006-01-02 15:04:05"), ended, s.InOctets, s.OutOctets)
	}
	return tw.Flush()
}
