package pin

import "fmt"

// Status is how a server's current tool definition compares with its pin.
type Status string

// Statuses.
const (
	StatusNew     Status = "new"     // no pin yet
	StatusSame    Status = "same"    // the pinned definition
	StatusChanged Status = "changed" // differs from the pin: quarantined
)

// Quarantine modes: what happens to a changed tool until an operator
// approves its new definition.
const (
	ModeHide = "hide" // leave it out of tools/list and refuse calls to it
	ModeFlag = "flag" // serve it, and mark its calls' audit records for review
)

// CheckMode validates a quarantine mode from configuration.
func CheckMode(mode string) error {
	if mode != ModeHide && mode != ModeFlag {
		return fmt.Errorf("tool quarantine mode %q: want %q or %q", mode, ModeHide, ModeFlag)
	}
	return nil
}

// Decision says what to do with one listed tool.
type Decision struct {
	Status Status `json:"status"`
	// Hide: do not list the tool and refuse calls to it. Flag: serve it but
	// mark its audit records for review. Both false for new and same tools.
	Hide bool `json:"hide,omitempty"`
	Flag bool `json:"flag,omitempty"`
	// Class is how worrying the change is (see Diff), for a changed tool.
	Class       Class  `json:"class,omitempty"`
	PinnedHash  string `json:"pinned_hash,omitempty"`
	CurrentHash string `json:"current_hash"`
}

// Decide compares a tool's current definition with its pin (the zero
// Pinned when it has none) under a quarantine mode.
//
// A new tool is neither hidden nor flagged: whether to pin it at once
// (trust on first use) or to hold it for approval is the caller's policy.
// A changed tool is quarantined even when the change is only cosmetic;
// Class lets the caller say how worrying it is, not skip the approval.
// An unknown mode hides (fails closed); validate modes with CheckMode when
// loading configuration.
func Decide(pinned, current Pinned, mode string) Decision {
	d := Decision{PinnedHash: pinned.Hash, CurrentHash: current.Hash}
	switch {
	case pinned.Hash == "":
		d.Status = StatusNew
	case pinned.Hash == current.Hash && pinned.Name == current.Name:
		d.Status = StatusSame
	default:
		d.Status = StatusChanged
		d.Class = Classify(Diff(pinned, current))
		if d.Class == 0 {
			// Same canonical text under another hash: the store's hash is
			// stale or forged. Not a change we can explain, so worry.
			d.Class = Suspicious
		}
		if mode == ModeFlag {
			d.Flag = true
		} else {
			d.Hide = true
		}
	}
	return d
}
