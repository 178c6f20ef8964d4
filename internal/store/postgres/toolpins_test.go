package postgres

import (
	"testing"

	"gatehouse/internal/store"
	"gatehouse/internal/store/storetest"
)

// TestToolPinsAcrossStores races Stores on one database, as Gatehouse
// replicas would: a tool is pinned on first sight once, and a pending
// definition is approved once.
func TestToolPinsAcrossStores(t *testing.T) {
	dbURL := newDatabase(t)
	storetest.ToolPinsAcrossStores(t, []store.Store{openStore(t, dbURL), openStore(t, dbURL), openStore(t, dbURL)})
}
