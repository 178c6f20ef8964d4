package audit

import "context"

// Sink delivers records outside the gateway. Each sink is fed in sequence
// order from its own cursor in the store; a batch that fails is sent again
// (after a backoff), so delivery is at least once and receivers
// deduplicate on Record.ID.
type Sink interface {
	// Name identifies the sink in configuration, cursors and metrics.
	Name() string
	// Send delivers a batch, in order. An error means the batch (or part
	// of it) may not have arrived: it will be sent again, whole.
	Send(ctx context.Context, recs []Record) error
	// Close releases connections; pending work is abandoned (the cursor
	// makes it be sent again after a restart).
	Close() error
}
