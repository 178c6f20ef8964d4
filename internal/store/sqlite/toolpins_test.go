package sqlite

import (
	"path/filepath"
	"testing"

	"gatehouse/internal/store"
	"gatehouse/internal/store/storetest"
)

// TestToolPinsAcrossStores races Stores on one file, as processes sharing
// it would: a tool is pinned on first sight once, and a pending definition
// is approved once.
func TestToolPinsAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	storetest.ToolPinsAcrossStores(t, []store.Store{openTemp(t, path), openTemp(t, path), openTemp(t, path)})
}
