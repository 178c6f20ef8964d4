package postgres

import (
	"testing"

	"gatehouse/internal/store"
	"gatehouse/internal/store/storetest"
)

// TestSingleUseAcrossStores races Stores on one database, as Gatehouse
// replicas would: approvals and grant expiries stay single-use.
func TestSingleUseAcrossStores(t *testing.T) {
	dbURL := newDatabase(t)
	storetest.SingleUseAcrossStores(t, []store.Store{openStore(t, dbURL), openStore(t, dbURL), openStore(t, dbURL)})
}
