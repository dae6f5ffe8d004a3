package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
)

// go-redis prints its own connection trouble to stderr through one
// process-wide logger. The registry already reports an unreachable Redis
// (once, as a warning), so go-redis's lines go to the first registry's
// logger at debug level instead.
var redisLogOnce sync.Once

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// routeRedisLog sends go-redis's log to log (the first call wins).
func routeRedisLog(log *slog.Logger) {
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{log}) })
}
