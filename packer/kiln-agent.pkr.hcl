# The Kiln agent AMI: Debian 12 with kiln-agent, its tools and its systemd unit.
#
#   packer init packer/                                   # once, online: fetches the amazon plugin
#   packer build -var region=eu-west-1 packer/            # needs agent/target/kiln-agent.jar
#
# The AMI is named kiln-agent-YYYYMMDD-hhmmss (UTC); `kiln launch --ami 'kiln-agent-*'` picks the
# newest. See packer/README.md.

packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.2"
    }
  }
}

variable "region" {
  type        = string
  description = "AWS region to build the AMI in (default: $AWS_REGION)."
  default     = env("AWS_REGION")
  validation {
    condition     = length(var.region) > 0
    error_message = "The region is not set: pass -var region=REGION (or set AWS_REGION)."
  }
}

variable "instance_type" {
  type        = string
  description = "Instance type of the temporary build instance."
  default     = "t3.small"
}

variable "ami_name_prefix" {
  type        = string
  description = "The AMI's name is this prefix plus a UTC timestamp; kiln launch --ami '<prefix>*' finds the newest."
  default     = "kiln-agent-"
}

variable "agent_jar" {
  type        = string
  description = "The agent jar to bake in (mvn -pl agent -am package). A relative path is relative to this directory."
  default     = "../agent/target/kiln-agent.jar"
}

variable "subnet_id" {
  type        = string
  description = "Subnet for the build instance (default: the default VPC's); it must give the instance a route to the Debian mirrors."
  default     = null
}

variable "associate_public_ip_address" {
  type        = bool
  description = "Give the build instance a public IP address (needed in a subnet that does not assign one, for packer's SSH and apt)."
  default     = null
}

variable "system_sshd_port" {
  type        = number
  description = "0 (default): Debian's sshd is disabled in the image, the agent's SSH server has port 22. N: keep sshd, on port N."
  default     = 0
  validation {
    condition     = var.system_sshd_port == 0 || (var.system_sshd_port > 0 && var.system_sshd_port < 65536 && var.system_sshd_port != 22 && var.system_sshd_port != 7443)
    error_message = "The system_sshd_port must be 0 (sshd disabled) or a port other than 22 (the agent's SSH) and 7443 (its gRPC)."
  }
}

variable "root_volume_size" {
  type        = number
  description = "GiB of the image's root volume (and so of each instance's); 0: the Debian AMI's own, 8 GiB. Pre-pulled container images may need more."
  default     = 0
  validation {
    condition     = var.root_volume_size == 0 || (var.root_volume_size >= 8 && var.root_volume_size <= 16384)
    error_message = "The root_volume_size must be 0 (the Debian AMI's 8 GiB) or 8 to 16384 GiB."
  }
}

variable "extra_packages" {
  type        = list(string)
  description = "Debian packages to install besides the agent's own (e.g. [\"git\", \"docker.io\"]); installed with --no-install-recommends, in the same apt-get run."
  default     = []
  validation {
    condition     = length([for p in var.extra_packages : p if !can(regex("^[a-z0-9][a-z0-9+.-]+$", p))]) == 0
    error_message = "Each of extra_packages must be a Debian package name (lower case letters, digits, + - .), e.g. \"docker.io\"."
  }
}

variable "user_script" {
  type        = string
  description = "Path of a provisioning script of yours (a relative path is relative to this directory), run as root near the end of the build with its output in the build log; empty: none."
  default     = ""
}

variable "build_user_groups" {
  type        = list(string)
  description = "Groups the build user `kiln` joins (they must exist once the packages are installed or the user script has run). docker, for one, makes the build user root-equivalent on the box."
  default     = []
  validation {
    condition     = length([for g in var.build_user_groups : g if !can(regex("^[a-z_][a-z0-9_-]{0,31}$", g)) || contains(["root", "sudo"], g)]) == 0
    error_message = "Each of build_user_groups must be a group name (lower case, at most 32 characters) other than root and sudo."
  }
}

locals {
  # UTC, sortable, and unique enough: one build per second at most.
  timestamp = formatdate("YYYYMMDD-hhmmss", timestamp())
  ami_name  = "${var.ami_name_prefix}${local.timestamp}"
  agent_jar = abspath(substr(var.agent_jar, 0, 1) == "/" ? var.agent_jar : "${path.root}/${var.agent_jar}")
  staging   = "/tmp/kiln-provision"
  # For the check's checksums: file() reads relative to packer's working directory, not this one.
  systemd_dir = abspath("${path.root}/../systemd")
  # The user's script, if any: uploaded to the staging directory; an empty file means none.
  user_script = var.user_script == "" ? "" : abspath(substr(var.user_script, 0, 1) == "/" ? var.user_script : "${path.root}/${var.user_script}")
}

source "amazon-ebs" "kiln-agent" {
  region                      = var.region
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  associate_public_ip_address = var.associate_public_ip_address

  # Debian's official Debian 12 (bookworm) AMIs, published by Debian's cloud team's account.
  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["136693071363"]
    most_recent = true
  }
  # A bigger root volume when asked; /dev/xvda is the Debian AMI's root device.
  dynamic "launch_block_device_mappings" {
    for_each = var.root_volume_size > 0 ? [var.root_volume_size] : []
    content {
      device_name           = "/dev/xvda"
      volume_size           = launch_block_device_mappings.value
      volume_type           = "gp3"
      delete_on_termination = true
    }
  }
  ssh_username = "admin"
  # Only the machine running packer may reach the build instance's SSH port.
  temporary_security_group_source_public_ip = true
  # The temporary key packer logs in with does not stay in the image.
  ssh_clear_authorized_keys = true

  # IMDSv2 only, on the build instance and (imds_support) on every instance of the AMI: the agent
  # reads its identity and user data with IMDSv2 and never falls back to v1; hop limit 1 keeps
  # the metadata out of reach of containers behind a bridge.
  imds_support = "v2.0"
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  ami_name        = local.ami_name
  ami_description = "Kiln agent on Debian 12 (${local.ami_name})"
  ena_support     = true

  # kiln:ami=agent marks the image; no kiln:managed here: that tag is for instances, volumes and
  # snapshots that the kiln CLI manages (and may reap).
  tags = {
    Name            = local.ami_name
    "kiln:ami"      = "agent"
    "kiln:base-ami" = "{{ .SourceAMIName }}"
  }
  snapshot_tags = {
    Name       = local.ami_name
    "kiln:ami" = "agent"
  }
  run_tags = {
    Name = "packer: ${local.ami_name}"
  }
}

build {
  sources = ["source.amazon-ebs.kiln-agent"]

  provisioner "shell" {
    inline = ["mkdir -p ${local.staging}"]
  }

  provisioner "file" {
    source      = local.agent_jar
    destination = "${local.staging}/kiln-agent.jar"
  }

  provisioner "file" {
    source      = "${path.root}/../systemd/kiln-agent.service"
    destination = "${local.staging}/kiln-agent.service"
  }

  provisioner "file" {
    source      = "${path.root}/agent.yml"
    destination = "${local.staging}/agent.yml"
  }

  provisioner "file" {
    source      = "${path.root}/../systemd/kiln-boot-backstop"
    destination = "${local.staging}/kiln-boot-backstop"
  }

  provisioner "file" {
    source      = "${path.root}/../systemd/kiln-boot-backstop.service"
    destination = "${local.staging}/kiln-boot-backstop.service"
  }

  # Only root reaches IMDS: the packet filter and the unit that loads it at boot.
  provisioner "file" {
    source      = "${path.root}/kiln-imds.nft"
    destination = "${local.staging}/kiln-imds.nft"
  }

  provisioner "file" {
    source      = "${path.root}/../systemd/kiln-imds.service"
    destination = "${local.staging}/kiln-imds.service"
  }

  # The user's provisioning script (user_script). Without one, the empty content uploads nothing,
  # and provision.sh finds no user-script.
  provisioner "file" {
    source      = local.user_script == "" ? null : local.user_script
    content     = local.user_script == "" ? "" : null
    destination = "${local.staging}/user-script"
  }

  provisioner "shell" {
    script = "${path.root}/provision.sh"
    environment_vars = [
      "PROVISION_STAGING=${local.staging}",
      "SYSTEM_SSHD_PORT=${var.system_sshd_port}",
      "EXTRA_PACKAGES=${join(" ", var.extra_packages)}",
      "BUILD_USER_GROUPS=${join(" ", var.build_user_groups)}",
    ]
    # Debian's `admin` user has passwordless sudo; env passes the variables through sudo.
    execute_command = "chmod +x {{ .Path }}; sudo -n env {{ .Vars }} {{ .Path }}"
  }

  # Last: the image's guarantees still hold whatever the packages and the user script did (the
  # agent's unit, the boot backstop, IMDS for root only, no sshd on port 22). A broken one fails
  # the build, naming it, and no AMI is registered. The installed files are compared with these.
  provisioner "shell" {
    script = "${path.root}/check-image.sh"
    environment_vars = [
      "SYSTEM_SSHD_PORT=${var.system_sshd_port}",
      "BUILD_USER_GROUPS=${join(" ", var.build_user_groups)}",
      "SHA256_AGENT_UNIT=${sha256(file("${local.systemd_dir}/kiln-agent.service"))}",
      "SHA256_BACKSTOP=${sha256(file("${local.systemd_dir}/kiln-boot-backstop"))}",
      "SHA256_BACKSTOP_UNIT=${sha256(file("${local.systemd_dir}/kiln-boot-backstop.service"))}",
      "SHA256_IMDS_RULE=${sha256(file("${abspath(path.root)}/kiln-imds.nft"))}",
      "SHA256_IMDS_UNIT=${sha256(file("${local.systemd_dir}/kiln-imds.service"))}",
    ]
    execute_command = "chmod +x {{ .Path }}; sudo -n env {{ .Vars }} {{ .Path }}"
  }

  # The AMI id per region, for scripts: packer/manifest.json (not committed).
  post-processor "manifest" {
    output     = "${path.root}/manifest.json"
    strip_path = true
  }
}
