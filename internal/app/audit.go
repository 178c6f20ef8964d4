package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"gatehouse/internal/audit"
	"gatehouse/internal/audit/sinks"
	"gatehouse/internal/config"
	"gatehouse/internal/store"
)

// checkpointKeyName is the vault entry holding the Ed25519 key that signs
// audit checkpoints.
const checkpointKeyName = "gatehouse:audit-checkpoint-key"

// auditSystem is the audit trail and its goroutine.
type auditSystem struct {
	*audit.Trail
	q     *audit.Queue
	sinks []audit.Sink
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

// startAudit starts the audit trail when the gateway has a store and the
// trail is not disabled; it returns nil otherwise.
func startAudit(ctx context.Context, cfg *config.Config, ids *identitySystem, log *slog.Logger) (*auditSystem, error) {
	if ids == nil || cfg.Audit.Disabled {
		if cfg.Audit.Disabled {
			log.Warn("the audit trail is disabled (audit.disabled: true)")
		}
		return nil, nil
	}
	ast, ok := ids.st.(store.AuditStore)
	if !ok {
		return nil, errors.New("this store does not keep audit records")
	}
	key, keyID, err := checkpointKey(ctx, ids)
	if err != nil {
		return nil, err
	}
	ac := cfg.Audit
	var built []audit.Sink
	for _, sc := range ac.Sinks {
		s, err := sinks.Build(sc.Name, sc.Type, sc.Settings)
		if err != nil {
			for _, b := range built {
				b.Close()
			}
			return nil, fmt.Errorf("audit sink %q: %w", sc.Name, err)
		}
		built = append(built, s)
	}
	q, err := audit.OpenQueue(ac.QueueDir, audit.QueueOptions{Sync: ac.Sync == "fsync", MaxBytes: int64(ac.MaxQueue), DropWhenFull: ac.FailMode == "drop"})
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	as := &auditSystem{q: q, sinks: built}
	as.Trail = audit.New(audit.Options{
		Queue: q, Store: ast, Logger: log.With("component", "audit"), Replica: fmt.Sprintf("%s/%d", host, os.Getpid()),
		Key: key, KeyID: keyID, CheckpointEvery: int64(ac.CheckpointEvery), CheckpointInterval: ac.CheckpointInterval.Std(),
		Retention: ac.Retention.Std(), Sinks: built,
	})
	log.Info("audit trail on", "queue", ac.QueueDir, "sync", ac.Sync, "fail_mode", ac.FailMode,
		"checkpoint_key", keyID, "checkpoint_public_key", base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	runCtx, cancel := context.WithCancel(context.Background())
	as.stop = cancel
	as.wg.Add(1)
	go func() {
		defer as.wg.Done()
		as.Run(runCtx)
	}()
	return as, nil
}

// close stops the trail after committing what is queued (best effort:
// what is not committed stays in the queue for the next start).
func (as *auditSystem) close() {
	as.stop()
	as.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5e9)
	_ = as.Flush(ctx)
	cancel()
	_ = as.q.Close()
	for _, s := range as.sinks {
		s.Close()
	}
}

// auditHook lets the parts built before the trail (the admin API, the
// policy engine) record events once it runs; before that, and when the
// trail is off, events are only logged.
type auditHook struct{ t atomic.Pointer[audit.Trail] }

func (h *auditHook) Log(r audit.Record) error {
	if t := h.t.Load(); t != nil {
		return t.Log(r)
	}
	return nil
}

// checkpointKey loads the checkpoint signing key from the vault, creating
// it on first use.
func checkpointKey(ctx context.Context, ids *identitySystem) (ed25519.PrivateKey, string, error) {
	seed, err := ids.vault.Get(ctx, checkpointKeyName, "")
	switch {
	case err == nil && len(seed) == ed25519.SeedSize:
	case err == nil || errors.Is(err, store.ErrNotFound):
		seed = make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, "", err
		}
		if err := ids.vault.Put(ctx, checkpointKeyName, "", seed); err != nil {
			return nil, "", fmt.Errorf("storing the audit checkpoint key: %w", err)
		}
		// Another replica may have stored its own at the same moment: use
		// whichever the vault holds now.
		if got, err := ids.vault.Get(ctx, checkpointKeyName, ""); err == nil && len(got) == ed25519.SeedSize {
			seed = got
		}
	default:
		return nil, "", fmt.Errorf("reading the audit checkpoint key: %w", err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	sum := sha256.Sum256(key.Public().(ed25519.PublicKey))
	return key, "ed25519:" + hex.EncodeToString(sum[:8]), nil
}
