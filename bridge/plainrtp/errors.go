package plainrtp

import "errors"

var (
	// ErrPortRange is returned by ParsePortRange for a malformed range.
	ErrPortRange = errors.New("plainrtp: bad port range")
	// ErrNoPorts is returned by PortPool.Listen when every port pair of the
	// range is in use or cannot be bound.
	ErrNoPorts = errors.New("plainrtp: no free RTP port pair")
	// ErrRTPTimeout is the cause a Transport ends with when no RTP came from
	// the caller for the inactivity timeout.
	ErrRTPTimeout = errors.New("plainrtp: no RTP from the caller")
	// ErrClosed is returned by WriteRTP after Close, and is the cause of a
	// Transport closed by its owner.
	ErrClosed = errors.New("plainrtp: transport closed")
	// ErrNoRemote is returned by WriteRTP before a remote address is known.
	ErrNoRemote = errors.New("plainrtp: no remote address")
)
