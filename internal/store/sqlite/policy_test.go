package sqlite

import (
	"path/filepath"
	"testing"

	"gatehouse/internal/store"
	"gatehouse/internal/store/storetest"
)

// TestSingleUseAcrossStores races Stores on one file, as processes sharing
// it would: approvals and grant expiries stay single-use.
func TestSingleUseAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	storetest.SingleUseAcrossStores(t, []store.Store{openTemp(t, path), openTemp(t, path), openTemp(t, path)})
}
