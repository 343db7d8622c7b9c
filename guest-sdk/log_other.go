//go:build !wasip1

package guest

import "os"

// hostLog writes to standard error outside a module, so that policy logic can
// be unit-tested natively.
func hostLog(level Level, msg []byte) {
	line := make([]byte, 0, len(msg)+12)
	line = append(line, "bw_host.log "...)
	line = append(line, level.String()...)
	line = append(line, ' ')
	line = append(line, msg...)
	line = append(line, '\n')
	os.Stderr.Write(line)
}
