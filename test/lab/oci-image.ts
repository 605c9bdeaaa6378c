// A container image built on the spot, for labs that run a real container runtime with no
// registry to pull from: one layer holding Debian's static busybox (`busybox-static`) as
// /bin/busybox, packed as an OCI image layout tarball that `ctr images import` takes.
// Containers call applets by path (`/bin/busybox ping …`), so the layer needs no symlinks.

import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, copyFileSync, readFileSync, writeFileSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { sh } from '../harness/netns'

export const BUSYBOX = '/bin/busybox'

/** The image's name once imported (from the containerd annotation in index.json). */
export const LAB_IMAGE = 'docker.io/podmesh/lab-busybox:1'

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

const OCI_ARCH: Partial<Record<NodeJS.Architecture, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' }

/** A blob written under blobs/sha256; returns its descriptor fields. */
function blob (layout: string, data: Buffer | string): { digest: string, size: number } {
  const hex = sha256(data)
  writeFileSync(join(layout, 'blobs', 'sha256', hex), data)
  return { digest: `sha256:${hex}`, size: Buffer.byteLength(data) }
}

/**
 * Builds the image tarball in `dir` and returns its path. Throws when busybox is missing: the
 * test's dependency (scripts/install-deps installs busybox-static).
 */
export async function buildBusyboxImage (dir: string): Promise<string> {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} not found: apt-get install busybox-static`)
  const arch = OCI_ARCH[process.arch]
  if (arch === undefined) throw new Error(`no OCI architecture name for ${process.arch}`)
  const rootfs = join(dir, 'rootfs')
  const layout = join(dir, 'layout')
  mkdirSync(join(rootfs, 'bin'), { recursive: true })
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true })
  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'))
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755)
  // Owned by root and with fixed times, so the layer's digest depends on busybox alone.
  const layerTar = join(dir, 'layer.tar')
  await sh('tar', ['--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', rootfs, '-cf', layerTar, 'bin'])
  const layer = blob(layout, readFileSync(layerTar))
  const config = blob(layout, JSON.stringify({
    architecture: arch,
    os: 'linux',
    config: { Cmd: ['/bin/busybox', 'sleep', '3600'] },
    rootfs: { type: 'layers', diff_ids: [layer.digest] }
  }))
  const manifestType = 'application/vnd.oci.image.manifest.v1+json'
  const manifest = blob(layout, JSON.stringify({
    schemaVersion: 2,
    mediaType: manifestType,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }]
  }))
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: manifestType,
      ...manifest,
      platform: { architecture: arch, os: 'linux' },
      annotations: { 'io.containerd.image.name': LAB_IMAGE, 'org.opencontainers.image.ref.name': '1' }
    }]
  }))
  const image = join(dir, 'lab-busybox.oci.tar')
  await sh('tar', ['-C', layout, '-cf', image, 'oci-layout', 'index.json', 'blobs'])
  return image
}
