package dev.kiln.controller.fleet;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Where an instance's volumes go and what its agent serves, decided from the volumes' roles (the
 * seed's layout, the same on EC2 and on the local provider):
 *
 * <ul>
 *   <li>every volume is mounted at {@code ROOT/mnt/ROLE}; a new volume may be formatted (the agent
 *       still formats only a provably blank one); a restored {@code sources} volume, and every
 *       volume of a {@code server}, is mounted read-only;</li>
 *   <li>with both a {@code sources} and a {@code builds} volume, the work tree is an overlay at
 *       {@code ROOT/srv/work}: sources below (read-only), {@code builds/work} above, so outputs,
 *       the tup database and any pushed change land on the builds volume; the agent's SSH server
 *       takes uploads into it and serves it;</li>
 *   <li>with a {@code builds} volume alone (a server), {@code builds/work} is served;</li>
 *   <li>otherwise the first volume is both the upload area and what is served.</li>
 * </ul>
 *
 * @param mounts   the boot mounts, in order (volumes first, then the overlay)
 * @param workTree where builds run and uploads land, or null when the instance has no volume
 * @param sources  the SSH server's upload area (/sources), or null
 * @param outputs  the SSH server's served tree (/outputs), or null
 */
public record InstanceLayout(List<Mount> mounts, String workTree, String sources, String outputs) {

    /**
     * One volume as the launch knows it.
     *
     * @param role     the volume role (sources, builds, data, ...)
     * @param volumeId the EBS volume id (empty on the local provider)
     * @param device   the device name or path (a hint on EC2; the device itself locally), or empty for a directory
     * @param fresh    a new volume (may be formatted when provably blank), not one restored from a snapshot
     * @param createdEmpty this launch created the EBS volume with CreateVolume and no snapshot, so it
     *                 is known to be empty: the user data says so (created-empty), and the agent takes
     *                 that as proof that it is blank
     */
    public record Volume(String role, String volumeId, String device, boolean fresh, boolean createdEmpty) {

        /** A volume this launch makes no claim about (a restored one, a directory, a loop image). */
        public Volume(String role, String volumeId, String device, boolean fresh) {
            this(role, volumeId, device, fresh, false);
        }
    }

    /**
     * A boot mount, as {@code kiln.volumes.mounts} takes it.
     *
     * @param volume     the volume, or null for the overlay
     * @param mountPoint where it goes
     * @param options    mount options
     * @param lowerDir   overlay: read-only lower layer, or null
     * @param upperDir   overlay: writable upper layer, or null
     */
    public record Mount(Volume volume, String mountPoint, List<String> options, String lowerDir, String upperDir) {
        public boolean overlay() {
            return volume == null;
        }
    }

    /**
     * Plans the layout.
     *
     * @param root         "" on EC2 (paths from /), or a directory for the local provider
     * @param instanceRole worker, server, or a template's name
     * @param volumes      the volumes in attachment order
     */
    public static InstanceLayout plan(String root, String instanceRole, List<Volume> volumes) {
        List<Mount> mounts = new ArrayList<>();
        for (Volume v : volumes) {
            boolean readOnly = readOnly(instanceRole, v);
            mounts.add(new Mount(v, mnt(root, v.role()), readOnly ? List.of("ro", "noatime") : List.of("noatime"), null, null));
        }
        Optional<Volume> sources = volumes.stream().filter(v -> v.role().equals("sources")).findFirst();
        Optional<Volume> builds = volumes.stream().filter(v -> v.role().equals("builds")).findFirst();
        if (sources.isPresent() && builds.isPresent() && !instanceRole.equals("server")) {
            String work = root + "/srv/work";
            mounts.add(new Mount(null, work, List.of(), mnt(root, "sources"), mnt(root, "builds") + "/work"));
            return new InstanceLayout(mounts, work, work, work);
        }
        if (builds.isPresent()) {
            String served = mnt(root, "builds") + "/work";
            return new InstanceLayout(mounts, served, instanceRole.equals("server") ? null : served, served);
        }
        if (!volumes.isEmpty()) {
            String first = mnt(root, volumes.get(0).role());
            return new InstanceLayout(mounts, first, instanceRole.equals("server") ? null : first, first);
        }
        return new InstanceLayout(mounts, null, null, null);
    }

    /** Whether the volume is mounted read-only: every volume of a server, and a restored sources volume. */
    public static boolean readOnly(String instanceRole, Volume v) {
        return instanceRole.equals("server") || (v.role().equals("sources") && !v.fresh());
    }

    private static String mnt(String root, String role) {
        return root + "/mnt/" + role;
    }
}
