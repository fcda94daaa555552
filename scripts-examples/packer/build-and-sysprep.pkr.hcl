# Build an image with Packer's qemu builder, then prepare it with guestsh:
# the standard library's sysprep, then a customize recipe, then a manifest.
#
#   packer build -var base_image=base.qcow2 -var kernel=vmlinuz -var initrd=initrd.img \
#     -var root=UUID=... build-and-sysprep.pkr.hcl
#
# It runs offline under TCG (no KVM needed): the builder copies the local
# base image (disk_image = true), boots it with the guest's own kernel and
# initramfs (direct kernel boot: no bootloader needed in the image), and the
# guest powers itself off (systemd.unit=poweroff.target), so no communicator
# is needed. This is where a real build would provision the guest (e.g. a
# kernel command line that runs an installer or a first-boot script).
# guestsh then works on the image the builder left in output_directory.

variable "base_image" {
  type        = string
  description = "The local base image (qcow2) the build starts from; it is copied, never changed."
}

variable "kernel" {
  type        = string
  description = "The guest's kernel (a copy of its /boot/vmlinuz-*) for the direct kernel boot."
}

variable "initrd" {
  type        = string
  description = "The guest's initramfs (a copy of its /boot/initrd.img-*)."
}

variable "root" {
  type        = string
  description = "The guest's root filesystem for the kernel command line, e.g. UUID=... or /dev/vda2."
}

variable "boot_args" {
  type        = string
  default     = "ro console=ttyS0 systemd.unit=poweroff.target"
  description = "The rest of the kernel command line; the guest must power off by itself."
}

variable "output_directory" {
  type    = string
  default = "output-guestsh"
}

variable "vm_name" {
  type    = string
  default = "image.qcow2"
}

variable "hostname" {
  type    = string
  default = "packer-built"
}

variable "guestsh" {
  type        = string
  default     = "guestsh"
  description = "How to start guestsh (e.g. \"npx guestsh\" in its checkout)."
}

variable "deadline" {
  type    = number
  default = 900
}

source "qemu" "image" {
  disk_image       = true
  iso_url          = var.base_image
  iso_checksum     = "none"
  use_backing_file = false
  format           = "qcow2"
  skip_resize_disk = true
  skip_compaction  = true
  output_directory = var.output_directory
  vm_name          = var.vm_name

  accelerator    = "tcg"
  headless       = true
  disable_vnc    = true
  communicator   = "none"
  memory         = 1024
  disk_interface = "virtio"
  # With no communicator, Packer waits this long for the guest to power off.
  shutdown_timeout = "10m"
  qemuargs = [
    ["-kernel", var.kernel],
    ["-initrd", var.initrd],
    ["-append", "root=${var.root} ${var.boot_args}"],
  ]
}

build {
  sources = ["source.qemu.image"]

  # One chain: separate post-processor blocks would each get the builder's own artifact.
  post-processors {
    # guestsh reads the build's files from this entry.
    post-processor "manifest" {
      output = "packer-manifest.json"
    }
    # Two runs, two transactions: each changes the image completely or not at all.
    post-processor "shell-local" {
      inline = [
        "${var.guestsh} run --packer -i --deadline ${var.deadline} guestsh/sysprep",
        "${var.guestsh} run --packer -i --deadline ${var.deadline} --param hostname='${var.hostname}' '${path.root}/customize.gfs.ts'",
      ]
    }
    post-processor "manifest" {
      output = "packer-manifest.json"
    }
  }
}
