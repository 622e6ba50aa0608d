// Package parallel runs a function over a list with a bounded number of
// goroutines, the one worker pool the modules share: the first error
// cancels the rest, and results keep the order of the input so that
// nothing downstream depends on which worker finished first.
package parallel

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// Map calls fn for every item, at most workers at a time (at least one),
// and returns the results in the order of items. The first error cancels
// the context the other calls see and is the one returned.
func Map[T, R any](ctx context.Context, workers int, items []T, fn func(ctx context.Context, i int, item T) (R, error)) ([]R, error) {
	out := make([]R, len(items))
	err := For(ctx, workers, items, func(ctx context.Context, i int, item T) error {
		r, err := fn(ctx, i, item)
		out[i] = r
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// For is Map without results.
func For[T any](ctx context.Context, workers int, items []T, fn func(ctx context.Context, i int, item T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for i, item := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			return fn(gctx, i, item)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Cancelled before any call failed: the caller must not take the
	// partial results for complete ones.
	return ctx.Err()
}
