package main

import (
	"context"
	"flag"

	"github.com/gatehouse-net/gatehouse/inspect"
)

const inspectUsage = `gatehouse inspect replay: look for filter-bypass attempts in packet captures.

Reads pcap and pcapng files and prints one line per finding (VPN, Tor, proxy,
DNS-over-HTTPS, tunnels, ...). With --json each finding is one JSON object per
line with file, time, src_ip, src_mac, dst_ip, dst_port, proto, class, detail
and evidence. Exits 0 whether or not anything was found.

Flags:
  --json   print JSON lines instead of text

Example:
  gatehouse inspect replay --json /tmp/pupil-laptop.pcapng
`

func cmdInspect(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand (replay)")
	}
	if args[0] == "-h" || args[0] == "--help" {
		return flag.ErrHelp
	}
	if args[0] != "replay" {
		return usagef("unknown subcommand %q (want replay)", args[0])
	}
	fs := flag.NewFlagSet("inspect replay", flag.ContinueOnError)
	jsonOut := fs.Bool("json", false, "JSON lines")
	if err := parseFlags(fs, args[1:], true); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("missing capture FILE")
	}
	return inspect.RunReplay(ctx, env.stdout, *jsonOut, fs.Args())
}
