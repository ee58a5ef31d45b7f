//go:build !unix

package bench

// ownCPUSeconds is not measured here.
func ownCPUSeconds() float64 { return 0 }
