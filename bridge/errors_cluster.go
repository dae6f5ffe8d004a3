package bridge

import (
	"errors"
	"net/http"
)

// Errors of a fleet node (Config.ClusterRedis).
var (
	// ErrClusterUnavailable: the registry (Redis) cannot be reached, so a
	// call this node does not hold cannot be found. Calls held here keep
	// working.
	ErrClusterUnavailable = errors.New("bridge: cluster registry unavailable; try again")
	// ErrNodeLost: the node that held the call is gone (killed or lost);
	// the call is over.
	ErrNodeLost = errors.New("bridge: the node holding the call is gone (node_lost)")
	// ErrNodeUnreachable: the node holding the call is in the registry but
	// did not answer the forwarded request.
	ErrNodeUnreachable = errors.New("bridge: the node holding the call did not answer")
)

// The cluster's rows of errorTable, kept here so the table's file stays as
// the single-node contract has it.
func init() {
	errorTable = append(errorTable, []struct {
		err    error
		status int
		code   string
	}{
		{ErrClusterUnavailable, http.StatusServiceUnavailable, "cluster_unavailable"},
		{ErrNodeLost, http.StatusGone, "node_lost"},
		{ErrNodeUnreachable, http.StatusBadGateway, "node_unreachable"},
	}...)
}
