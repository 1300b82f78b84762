package findingstore

import (
	"strconv"

	"github.com/gatehouse-net/gatehouse/alert/finding"
)

// Defaults of the per-client finding budget.
const (
	// DefaultClientBudget is how many findings of one client are stored
	// per minute before only the unusual ones are: a device doing
	// something a detector notices raises a handful; a flood of crafted
	// packets meant to bury its real findings (or fill the disk) raises
	// thousands.
	DefaultClientBudget = 60
	// DefaultClientKinds bounds the distinct kinds (class, destination,
	// detail) remembered per client and minute.
	DefaultClientKinds = 256
	// DefaultClientTable bounds the clients the budget tracks.
	DefaultClientTable = 4096
)

// The budget (internal/clientbudget) keeps the first and the unusual of each
// client's findings: the first ClientBudget a minute, and after that each one
// of a kind the client has not raised yet this minute (another class,
// destination or detail), up to DefaultClientKinds kinds. A repeat of a kind
// already stored adds nothing the DSL does not have. What is left out is
// counted and logged, never silently lost.

// clientKey names the device a finding is about: its MAC when known, else
// its address; "" for findings about no client (kept always).
func clientKey(f finding.Finding) string {
	if len(f.SrcMAC) > 0 {
		return f.SrcMAC.String()
	}
	if f.SrcIP.IsValid() {
		return f.SrcIP.String()
	}
	return ""
}

func kindOf(f finding.Finding) string {
	return f.Class + "|" + f.DstIP.String() + "|" + strconv.Itoa(int(f.DstPort)) + "|" + f.Detail
}
