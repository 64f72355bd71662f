// Our interop program (see main.go). masque-go v0.4.0 is the release built against quic-go
// v0.60.0 (its later commits need quic-go v0.61's capsule API), so both are pinned here.
module masque-pifo/tests/interop/masquego

go 1.25.0

require (
	github.com/dunglas/httpsfv v1.1.0
	github.com/quic-go/masque-go v0.4.0
	github.com/quic-go/quic-go v0.60.0
	github.com/yosida95/uritemplate/v3 v3.0.2
)

require (
	github.com/quic-go/qpack v0.6.0 // indirect
	golang.org/x/crypto v0.53.0 // indirect
	golang.org/x/net v0.56.0 // indirect
	golang.org/x/sys v0.46.0 // indirect
	golang.org/x/text v0.38.0 // indirect
)
