package app

import (
	"context"
	"log/slog"
	"sync"

	"gatehouse/internal/config"
	"gatehouse/internal/policy"
)

// policySystem is the policy engine and what runs beside it: the decision
// record and the grant-expiry loop.
type policySystem struct {
	*policy.Engine
	rec  *policy.Recorder
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// startPolicy builds the policy engine: over the store (grants,
// approvals, the identity directory) when there is one.
func startPolicy(ctx context.Context, cfg *config.Config, ids *identitySystem, log *slog.Logger) (*policySystem, error) {
	ps := &policySystem{}
	opts := policy.EngineOptions{Logger: log.With("component", "policy")}
	if cfg.Policy != nil && cfg.Policy.Record != "" {
		rec, err := policy.OpenRecorder(cfg.Policy.Record, log)
		if err != nil {
			return nil, err
		}
		ps.rec = rec
		opts.Recorder = rec
		log.Info("recording policy decisions (arguments included)", "path", cfg.Policy.Record)
	}
	if ids != nil {
		opts.Store, opts.Directory = ids.st, ids.dir
	}
	ps.Engine = policy.NewEngine(opts)
	if err := ps.Load(ctx); err != nil {
		if ps.rec != nil {
			ps.rec.Close()
		}
		return nil, err
	}
	if ids != nil {
		ids.setPolicy(ps.Engine)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	ps.stop = cancel
	ps.wg.Add(1)
	go func() {
		defer ps.wg.Done()
		ps.Run(runCtx)
	}()
	return ps, nil
}

func (ps *policySystem) close() {
	ps.stop()
	ps.wg.Wait()
	if ps.rec != nil {
		ps.rec.Close()
	}
}
