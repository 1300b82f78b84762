package captive

import (
	"context"
	"time"
)

// purgeEvery is how often PurgeDaily runs.
const purgeEvery = 24 * time.Hour

// PurgeDaily deletes guests' acceptance records and code attempts older than
// retention (the school's policy), at once and then daily, until ctx is
// done. The deletions are audited as the scheduler. A purge that fails is
// logged and tried again the next day: the portal keeps serving.
func (p *Portal) PurgeDaily(ctx context.Context, retention time.Duration) error {
	tick := time.NewTicker(purgeEvery)
	defer tick.Stop()
	for {
		if _, _, err := p.Purge(ctx, "scheduler", retention); err != nil && ctx.Err() == nil {
			p.log.Error("purging old guest records", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
