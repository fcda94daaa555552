# A post-processor-only pipeline: no VM is built. The null builder makes an
# empty artifact, artifice replaces it with an existing image, guestsh
# sysprep's that image in place (or leaves it untouched if the recipe
# fails), then checksum and manifest record the result.
#
#   packer build -var image=disk.qcow2 sysprep-image.pkr.hcl
#   packer build -var image=disk.qcow2 -var recipe=harden.gfs.ts sysprep-image.pkr.hcl
#
# The first manifest post-processor is what guestsh reads: Packer tells a
# post-processor its build's name and run id, not the artifact's files.

variable "image" {
  type        = string
  description = "The disk image to prepare (changed in place)."
}

variable "recipe" {
  type        = string
  default     = "guestsh/sysprep"
  description = "The recipe guestsh runs: a .gfs.ts file or a standard-library recipe."
}

variable "guestsh" {
  type        = string
  default     = "guestsh"
  description = "How to start guestsh (e.g. \"npx guestsh\" in its checkout)."
}

variable "result" {
  type        = string
  default     = "guestsh-result.json"
  description = "Where guestsh writes its JSON result document."
}

variable "checksum_file" {
  type    = string
  default = "image.sha256"
}

variable "deadline" {
  type        = number
  default     = 900
  description = "Seconds guestsh may take before its commit begins; past that it stops and writes nothing."
}

source "null" "image" {
  communicator = "none"
}

build {
  sources = ["source.null.image"]

  # One chain: separate post-processor blocks would each get the builder's own (empty) artifact.
  post-processors {
    post-processor "artifice" {
      files = [var.image]
    }
    post-processor "manifest" {
      output = "packer-manifest.json"
    }
    post-processor "shell-local" {
      inline = ["${var.guestsh} run --packer -i --json --result '${var.result}' --deadline ${var.deadline} '${var.recipe}'"]
    }
    post-processor "checksum" {
      checksum_types = ["sha256"]
      output         = var.checksum_file
    }
    post-processor "manifest" {
      output = "packer-manifest.json"
    }
  }
}
