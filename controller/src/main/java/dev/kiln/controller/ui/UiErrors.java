package dev.kiln.controller.ui;

import com.google.gson.JsonObject;
import io.micronaut.http.HttpResponse;
import io.micronaut.http.server.exceptions.response.Error;
import io.micronaut.http.server.exceptions.response.ErrorContext;
import io.micronaut.http.server.exceptions.response.JsonErrorResponseBodyProvider;
import jakarta.inject.Singleton;

import java.util.stream.Collectors;

/**
 * The body of Micronaut's own error responses (an unknown route, a missing parameter), written with
 * Gson: the controller carries no JSON mapper for Micronaut's default to use.
 */
@Singleton
public class UiErrors implements JsonErrorResponseBodyProvider<String> {

    @Override
    public String body(ErrorContext context, HttpResponse<?> response) {
        JsonObject o = new JsonObject();
        o.addProperty("ok", false);
        o.addProperty("message", context.hasErrors()
                ? context.getErrors().stream().map(Error::getMessage).collect(Collectors.joining("; "))
                : response.reason());
        return o.toString();
    }
}
