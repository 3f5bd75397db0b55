package dev.kiln.agent.lease;

import java.util.List;

/** Where interruption notices come from (IMDS in ec2 mode; nothing in local mode). */
public interface NoticeSource {

    /** The notices in force now. */
    List<Notice> poll() throws Exception;

    NoticeSource NONE = List::of;
}
