package probes

import (
	"context"
	"net"
	"strconv"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// tcpCheck passes when the node accepts a TCP connection to host:port.
func tcpCheck(ctx context.Context, r inventory.Runner, t inventory.Target, h *manifests.Health) HealthResult {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout(h))
	defer cancel()
	addr := net.JoinHostPort(checkHost(h.TCP.Host, t), strconv.Itoa(h.TCP.Port))
	conn, err := r.DialTCP(ctx, t, addr)
	if err != nil {
		return HealthResult{Checked: true, Message: "tcp " + addr + ": " + err.Error()}
	}
	conn.Close()
	return HealthResult{Checked: true, OK: true, Message: "tcp " + addr + ": connected"}
}
