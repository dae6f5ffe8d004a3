package tts

import (
	"bytes"
	"testing"
)

func TestReadAll(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 100000} {
		want := bytes.Repeat([]byte{'x'}, n)
		got, err := readAll(bytes.NewReader(want), []byte{1, 2, 3})
		if err != nil || !bytes.Equal(got[3:], want) {
			t.Fatalf("readAll(%d): %d bytes, %v", n, len(got)-3, err)
		}
	}
}
