package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;

/** Translates AWS failures into one-line messages that say what to do, with an exit code. */
public final class AwsErrors {

    private AwsErrors() {
    }

    public static KilnException translate(SdkException e, String doing) {
        if (e instanceof AwsServiceException s) {
            String code = s.awsErrorDetails() == null ? "" : s.awsErrorDetails().errorCode();
            String msg = s.awsErrorDetails() == null ? s.getMessage() : s.awsErrorDetails().errorMessage();
            if (code == null) {
                code = "";
            }
            if (code.startsWith("InvalidAMIID") || code.endsWith(".NotFound") || code.equals("InvalidSnapshot.NotFound")) {
                return new KilnException(ExitCodes.NOT_FOUND, doing + ": " + code + ": " + msg
                        + " (check the id and the region: AWS_REGION or `region` in config.yml)", e);
            }
            if (code.equals("AuthFailure") || code.equals("UnauthorizedOperation") || code.contains("Credentials")
                    || code.equals("InvalidClientTokenId") || code.equals("SignatureDoesNotMatch")) {
                return new KilnException(ExitCodes.CONFIG, doing + ": AWS refused the credentials (" + code + ": " + msg
                        + "); check AWS_PROFILE / AWS_ACCESS_KEY_ID and the region", e);
            }
            if (code.equals("InstanceLimitExceeded") || code.equals("VcpuLimitExceeded") || code.contains("Quota")) {
                return new KilnException(ExitCodes.REFUSED, doing + ": the account's EC2 quota is used up (" + code + ": "
                        + msg + "); end instances (kiln ls, kiln terminate) or ask AWS for a higher quota", e);
            }
            if (code.equals("IdempotentParameterMismatch")) {
                // EC2 keeps a client token's first request: a retry must repeat it exactly.
                return new KilnException(ExitCodes.REFUSED, doing + ": the client token was used before for a request with"
                        + " other parameters (" + code + ": " + msg + "); retry with exactly the same options, or use a new"
                        + " --client-token", e);
            }
            if (code.equals("InsufficientInstanceCapacity") || code.equals("Unsupported")) {
                return new KilnException(ExitCodes.REFUSED, doing + ": EC2 has no capacity for this request (" + code + ": "
                        + msg + "); try another instance type or subnet (availability zone)", e);
            }
            return new KilnException(ExitCodes.FAILURE, doing + ": " + code + ": " + msg, e);
        }
        if (e instanceof SdkClientException && String.valueOf(e.getMessage()).contains("credentials")) {
            return new KilnException(ExitCodes.CONFIG, doing + ": no AWS credentials found; set AWS_PROFILE or "
                    + "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (see `aws configure`)", e);
        }
        if (e instanceof SdkClientException && String.valueOf(e.getMessage()).contains("region")) {
            return new KilnException(ExitCodes.CONFIG, doing + ": no AWS region; set AWS_REGION or `region` in "
                    + "~/.config/kiln/config.yml", e);
        }
        return new KilnException(ExitCodes.UNREACHABLE, doing + ": cannot reach EC2: " + e.getMessage(), e);
    }
}
