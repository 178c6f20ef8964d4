// Package vaulttest provides an in-memory store for tests of code that uses
// the vault.
package vaulttest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"gatehouse/internal/store"
)

// MemStore keeps vault secrets in memory and records published changes. It
// implements the methods of store.Store the vault uses (vault.Store). It is
// safe for concurrent use; records go in and come out as deep copies.
type MemStore struct {
	// BeforeGet, if set, is called at the start of every GetSecret, without
	// the lock held (to inject races in tests). Set it before use.
	BeforeGet func(name, agent string)

	mu      sync.Mutex
	secrets map[[2]string]store.VaultSecret
	changes []store.Change
	gets    int
	puts    int
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{secrets: make(map[[2]string]store.VaultSecret)}
}

// PutSecret creates or replaces the record (s.Name, s.Agent).
func (m *MemStore) PutSecret(_ context.Context, s store.VaultSecret) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	m.secrets[[2]string{s.Name, s.Agent}] = clone(s)
	return nil
}

// GetSecret returns the record (name, agent) or an error wrapping
// store.ErrNotFound.
func (m *MemStore) GetSecret(_ context.Context, name, agent string) (store.VaultSecret, error) {
	if m.BeforeGet != nil {
		m.BeforeGet(name, agent)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	s, ok := m.secrets[[2]string{name, agent}]
	if !ok {
		return store.VaultSecret{}, fmt.Errorf("secret %q agent %q: %w", name, agent, store.ErrNotFound)
	}
	return clone(s), nil
}

// ListSecrets returns every record, sorted by name and agent.
func (m *MemStore) ListSecrets(context.Context) ([]store.VaultSecret, error) {
	return m.Records(), nil
}

// DeleteSecret removes the record (name, agent) or returns an error
// wrapping store.ErrNotFound.
func (m *MemStore) DeleteSecret(_ context.Context, name, agent string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{name, agent}
	if _, ok := m.secrets[k]; !ok {
		return fmt.Errorf("secret %q agent %q: %w", name, agent, store.ErrNotFound)
	}
	delete(m.secrets, k)
	return nil
}

// Publish records the change.
func (m *MemStore) Publish(_ context.Context, c store.Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changes = append(m.changes, c)
	return nil
}

// Records returns copies of every record, sorted by name and agent.
func (m *MemStore) Records() []store.VaultSecret {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]store.VaultSecret, 0, len(m.secrets))
	for _, s := range m.secrets {
		out = append(out, clone(s))
	}
	slices.SortFunc(out, func(a, b store.VaultSecret) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Agent, b.Agent)
	})
	return out
}

// Set writes a record as given; tests use it to tamper with or move
// records behind the vault's back.
func (m *MemStore) Set(s store.VaultSecret) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.secrets[[2]string{s.Name, s.Agent}] = clone(s)
}

// Changes returns the published changes, in order.
func (m *MemStore) Changes() []store.Change {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.changes)
}

// Gets returns how many times GetSecret was called.
func (m *MemStore) Gets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

// Puts returns how many times PutSecret was called.
func (m *MemStore) Puts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts
}

func clone(s store.VaultSecret) store.VaultSecret {
	s.Ciphertext = slices.Clone(s.Ciphertext)
	s.WrappedDEK = slices.Clone(s.WrappedDEK)
	return s
}
