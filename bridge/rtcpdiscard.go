package bridge

import (
	"io"
	"sync"

	"github.com/pion/transport/v4/packetio"
)

// srtpBufferLimit is the size Pion's SRTP read buffers are limited to when
// no BufferFactory is set (pion/srtp's srtpBufferSize).
const srtpBufferLimit = 1000 * 1000

// sendOnlyBuffers is the SettingEngine.BufferFactory of a call that only
// sends: the RTCP the client sends (receiver reports about the bridge's
// audio) is dropped on arrival instead of buffered for a reader. Nothing in
// the bridge uses it (the sender report interceptor only writes), so the
// call needs no goroutine reading it, and no buffer grows to Pion's 100 KB
// limit. RTP buffers are Pion's usual ones.
func sendOnlyBuffers(t packetio.BufferPacketType, _ uint32) io.ReadWriteCloser {
	if t == packetio.RTCPBufferPacket {
		return newDiscardBuffer()
	}
	b := packetio.NewBuffer()
	b.SetLimitSize(srtpBufferLimit)
	return b
}

// discardBuffer accepts every write and keeps nothing; a Read waits until
// Close (the stream's end) and then returns io.EOF.
type discardBuffer struct {
	closed    chan struct{}
	closeOnce sync.Once
}

func newDiscardBuffer() *discardBuffer { return &discardBuffer{closed: make(chan struct{})} }

func (b *discardBuffer) Write(p []byte) (int, error) {
	select {
	case <-b.closed:
		return 0, io.ErrClosedPipe
	default:
		return len(p), nil
	}
}

func (b *discardBuffer) Read([]byte) (int, error) {
	<-b.closed
	return 0, io.EOF
}

func (b *discardBuffer) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	return nil
}
