package dev.kiln.e2e;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The controller's IAM policy in docs/aws.md, as a reader copies it: valid JSON that allows the one
 * tag change Kiln makes on existing instances and nothing wider. moto enforces no IAM, so this
 * checks the document itself; AWS has not evaluated it.
 */
class AwsPolicyDocTest {

    static JsonObject policy() throws Exception {
        String doc = Files.readString(ImageAndUnitTest.ROOT.resolve("docs/aws.md"));
        Matcher m = Pattern.compile("```json\n(.*?)```", Pattern.DOTALL).matcher(doc);
        assertTrue(m.find(), "docs/aws.md has a JSON policy");
        return JsonParser.parseString(m.group(1)).getAsJsonObject();
    }

    static List<JsonObject> statements(JsonObject policy, String action) {
        List<JsonObject> out = new ArrayList<>();
        for (JsonElement e : policy.getAsJsonArray("Statement")) {
            JsonObject s = e.getAsJsonObject();
            JsonElement a = s.get("Action");
            List<String> actions = new ArrayList<>();
            if (a.isJsonArray()) {
                a.getAsJsonArray().forEach(x -> actions.add(x.getAsString()));
            } else {
                actions.add(a.getAsString());
            }
            if (actions.contains(action)) {
                out.add(s);
            }
        }
        return out;
    }

    /** The instance profile's policy for scheduled snapshots: the second JSON block. */
    static JsonObject snapshotPolicy() throws Exception {
        String doc = Files.readString(ImageAndUnitTest.ROOT.resolve("docs/aws.md"));
        Matcher m = Pattern.compile("```json\n(.*?)```", Pattern.DOTALL).matcher(doc);
        assertTrue(m.find() && m.find(), "docs/aws.md has the instance profile's policy");
        return JsonParser.parseString(m.group(1)).getAsJsonObject();
    }

    @Test
    void theInstanceProfileSnapshotsAndDeletesOnlyKilnsOfItsRoleAndTagsOnlyAtCreation() throws Exception {
        JsonObject p = snapshotPolicy();
        List<String> actions = new ArrayList<>();
        p.getAsJsonArray("Statement").forEach(e -> {
            JsonElement a = e.getAsJsonObject().get("Action");
            if (a.isJsonArray()) {
                a.getAsJsonArray().forEach(x -> actions.add(x.getAsString()));
            } else {
                actions.add(a.getAsString());
            }
        });
        assertEquals(List.of("ec2:CreateSnapshot", "ec2:CreateTags", "ec2:DeleteSnapshot", "ec2:DescribeSnapshots",
                "ec2:DescribeVolumes"), actions.stream().distinct().sorted().toList(), "the agent's calls and no others");
        for (JsonObject s : statements(p, "ec2:CreateSnapshot")) {
            JsonObject eq = s.getAsJsonObject("Condition").getAsJsonObject("StringEquals");
            String prefix = s.get("Resource").getAsString().contains(":volume/") ? "aws:ResourceTag/" : "aws:RequestTag/";
            assertEquals("true", eq.get(prefix + "kiln:managed").getAsString(), s.toString());
            assertEquals("data", eq.get(prefix + "kiln:volume-role").getAsString(), s.toString());
        }
        for (JsonObject s : statements(p, "ec2:DeleteSnapshot")) {
            JsonObject eq = s.getAsJsonObject("Condition").getAsJsonObject("StringEquals");
            assertEquals("true", eq.get("aws:ResourceTag/kiln:managed").getAsString(), s.toString());
            assertEquals("data", eq.get("aws:ResourceTag/kiln:volume-role").getAsString(), s.toString());
        }
        for (JsonObject s : statements(p, "ec2:CreateTags")) {
            assertEquals("CreateSnapshot", s.getAsJsonObject("Condition").getAsJsonObject("StringEquals")
                    .get("ec2:CreateAction").getAsString(), s.toString());
        }
    }

    @Test
    void existingResourcesMayHaveOnlyKilnsOwnKeysRewrittenAndOnlyIfKilnManagesThem() throws Exception {
        List<JsonObject> tagging = statements(policy(), "ec2:CreateTags");
        int instances = 0;
        int volumes = 0;
        for (JsonObject s : tagging) {
            JsonObject c = s.getAsJsonObject("Condition");
            boolean atCreate = c.has("StringEquals") && c.getAsJsonObject("StringEquals").has("ec2:CreateAction");
            if (atCreate) {
                continue;
            }
            assertEquals("true", c.getAsJsonObject("StringEquals").get("ec2:ResourceTag/kiln:managed").getAsString(), s.toString());
            JsonArray keys = c.getAsJsonObject("ForAllValues:StringEquals").getAsJsonArray("aws:TagKeys");
            assertEquals("false", c.getAsJsonObject("Null").get("aws:TagKeys").getAsString(), s.toString());
            String resource = s.get("Resource").getAsString();
            if (resource.endsWith(":instance/*")) {
                instances++;
                assertEquals("[\"kiln:expires-at\"]", keys.toString(), s.toString()); // the lease's record only
            } else if (resource.endsWith(":volume/*")) {
                volumes++;
                assertEquals("[\"kiln:instance\",\"kiln:access\",\"kiln:keep\",\"kiln:unsaved\"]", keys.toString(), s.toString());
            } else {
                throw new AssertionError("tags on an existing resource other than an instance or volume: " + s);
            }
        }
        assertEquals(1, instances, "one statement for tags on existing instances");
        assertEquals(1, volumes, "one statement for the fate tags of existing volumes");
    }

    @Test
    void instancesAreLaunchedOnlyWithImdsV2TokensAndAListedType() throws Exception {
        JsonObject instance = statements(policy(), "ec2:RunInstances").stream()
                .filter(s -> s.get("Resource").isJsonPrimitive() && s.get("Resource").getAsString().endsWith(":instance/*"))
                .findFirst().orElseThrow();
        JsonObject equals = instance.getAsJsonObject("Condition").getAsJsonObject("StringEquals");
        assertEquals("required", equals.get("ec2:MetadataHttpTokens").getAsString());
        assertEquals("true", equals.get("aws:RequestTag/kiln:managed").getAsString());
        assertTrue(equals.getAsJsonArray("ec2:InstanceType").size() > 0);
    }

    @Test
    void destructiveCallsReachOnlyKilnResources() throws Exception {
        JsonObject policy = policy();
        for (String action : List.of("ec2:TerminateInstances", "ec2:DeleteVolume", "ec2:DeleteSnapshot", "ec2:AttachVolume",
                "ec2:GetConsoleOutput")) {
            List<JsonObject> found = statements(policy, action);
            assertTrue(!found.isEmpty(), action);
            found.forEach(s -> assertEquals("true", s.getAsJsonObject("Condition").getAsJsonObject("StringEquals")
                    .get("ec2:ResourceTag/kiln:managed").getAsString(), action + ": " + s));
        }
    }
}
